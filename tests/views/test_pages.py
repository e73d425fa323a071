"""What every page shares: error pages with the navigation (JSON under /api/), the navigation marking where you
are, times as <time>, the favicon."""

import re

import pytest

from tests.conftest import Session


@pytest.fixture
def member(app, make_user):
    make_user("member@example.com", "acme", "member")
    session = Session(app.test_client())
    session.login("member@example.com")
    return session


def current_links(page: str) -> list[str]:
    """The links the page's navigation bars mark as the current page."""
    navigation = "".join(re.findall(r"<nav .*?</nav>", page, re.S))
    return re.findall(r'<a href="[^"]*" aria-current="page">([^<]+)</a>', navigation)


def test_404_is_a_dashboard_page_with_the_navigation(owner):
    response = owner.get("/orgs/acme/apps/no-such-app")
    page = response.get_data(as_text=True)
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "<h1>Page not found</h1>" in page and 'data-testid="error-page"' in page
    assert '<nav class="subnav" aria-label="Acme">' in page and "Log out" in page
    assert current_links(page) == []  # an error page is no section's
    assert owner.get("/orgs/someone-else/apps").status_code == 404


def test_404_for_someone_logged_out_offers_to_log_in(session):
    response = session.get("/no/such/page")
    page = response.get_data(as_text=True)
    assert response.status_code == 404 and "Page not found" in page and 'href="/login"' in page
    assert 'class="subnav"' not in page


def test_403_says_why_on_a_page_with_the_navigation(member):
    response = member.get("/orgs/acme/apps/new")
    page = response.get_data(as_text=True)
    assert response.status_code == 403 and "<h1>You can&#39;t do that here</h1>" in page
    assert "Only owners and managers of this organisation can do that." in page
    assert '<nav class="subnav" aria-label="Acme">' in page


def test_api_errors_stay_json(app, owner):
    response = owner.get("/api/0/no-such-endpoint/")
    assert response.status_code == 404 and response.is_json  # says what is missing, never a silent 200
    assert response.get_json() == {"detail": "GET /api/0/no-such-endpoint/ is not implemented by Hookline."}
    response = owner.client.delete("/api/0/organizations/acme/sentry-apps/")
    assert response.status_code == 405 and response.is_json and "GET" in response.headers["Allow"]
    response = owner.get("/api/99/store/")  # the ingest endpoints answer JSON too
    assert response.status_code == 405 and response.is_json


def test_500_is_a_styled_page_and_json_under_api(app, make_user, session):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: the error handler answers

    @app.route("/boom")
    @app.route("/api/boom")
    def boom():
        raise RuntimeError("a bug")

    make_user()
    owner = session
    owner.login()

    response = owner.get("/boom")
    page = response.get_data(as_text=True)
    assert response.status_code == 500 and "<h1>Something went wrong</h1>" in page and 'class="subnav"' in page
    assert "a bug" not in page
    response = owner.get("/api/boom")
    assert response.status_code == 500 and response.is_json and "detail" in response.get_json()


def test_navigation_marks_the_current_section_on_every_org_page(owner):
    expected = {
        "/orgs/acme/apps": ["Apps"], "/orgs/acme/apps/new": ["Apps"], "/orgs/acme/projects": ["Projects"],
        "/orgs/acme/issues": ["Issues"], "/orgs/acme/incidents": ["Incidents"],
        "/orgs/acme/audit-log": ["Audit log"], "/orgs/acme/settings": ["Settings"],
        "/settings/tokens": ["API tokens"], "/api-docs": ["API docs"],
    }
    for path, links in expected.items():
        page = owner.get(path).get_data(as_text=True)
        assert current_links(page) == links, path
        assert '<nav class="subnav" aria-label="Acme">' in page, path  # the tokens and docs pages too


def test_times_are_time_elements_and_pages_link_the_favicon(app, owner):
    owner.post("/settings/tokens", {"name": "ci"})
    page = owner.get("/settings/tokens").get_data(as_text=True)
    assert re.search(r'<td[^>]*><time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ">\d{4}-\d\d-\d\d \d\d:\d\d UTC</time></td>', page)
    assert '<script src="/static/time.js" defer></script>' in page
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
    icon = owner.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    icon.close()


def test_revoking_a_token_asks_first(app, owner):
    owner.post("/settings/tokens", {"name": "ci"})
    revoke = re.search(r'action="(/settings/tokens/\d+/revoke)"', owner.get("/settings/tokens").get_data(as_text=True))[1]
    asked = owner.post(revoke).get_data(as_text=True)
    assert "Revoke this token?" in asked and "Revoke token" in asked
    assert "No tokens yet." not in owner.get("/settings/tokens").get_data(as_text=True)
    owner.post(revoke, {"confirm": "1"})
    assert "No tokens yet." in owner.get("/settings/tokens").get_data(as_text=True)


def test_every_page_starts_with_a_skip_link_to_its_content(owner):
    for path in ("/orgs/acme/apps", "/settings/tokens", "/orgs/acme/no-such-page"):
        page = owner.get(path).get_data(as_text=True)
        body = page[page.index("<body"):]
        first_link = re.search(r"<(a|button|input|select|textarea)\b[^>]*>[^<]*", body).group(0)
        assert first_link == '<a class="skip-link" href="#content">Skip to content'
        assert '<main id="content" tabindex="-1">' in page


def test_api_docs_render_the_documents_markdown(owner):
    page = owner.get("/api-docs").get_data(as_text=True)
    assert "<code>Authorization: Bearer &lt;token&gt;</code>" in page and "`" not in page
