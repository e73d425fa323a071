"""Registering apps and reading them, scoped to the user's organisation."""

import html
import re
from urllib.parse import urlsplit

import requests
from sqlalchemy import func, select

from tests.conftest import PASSWORD
from webapp.core.extensions import db
from webapp.models import SentryApp, SentryAppInstallation

APP = {"name": "Pager bridge", "webhook_url": "https://93.184.216.34/hook", "issue": "y", "comment": "y"}


def count_apps(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(SentryApp))


def test_register_app_creates_it_with_an_installation(app, owner):
    response = owner.post("/orgs/acme/apps/new", APP)
    assert response.status_code == 302
    assert response.headers["Location"] == "/orgs/acme/apps/pager-bridge"
    with app.app_context():
        sentry_app = db.session.scalar(select(SentryApp))
        assert (sentry_app.name, sentry_app.slug, sentry_app.status) == ("Pager bridge", "pager-bridge", "enabled")
        assert sentry_app.resource_list == ["issue", "comment"]
        assert len(sentry_app.client_secret) == 64
        assert db.session.scalar(select(SentryAppInstallation)).sentry_app_id == sentry_app.id
    listing = owner.get("/orgs/acme/apps").get_data(as_text=True)
    assert "Pager bridge" in listing and "https://93.184.216.34/hook" in listing and "enabled" in listing


def test_form_labels_and_buttons(owner):
    page = owner.get("/orgs/acme/apps/new").get_data(as_text=True)
    for text in ('<label for="name">Name</label>', '<label for="webhook_url">Webhook URL</label>', "Register app"):
        assert text in page
    for resource in ("issue", "error", "comment"):
        assert f'name="{resource}" type="checkbox"' in page


def test_bad_url_gets_a_message_next_to_the_field_and_saves_nothing(app, settings, owner):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    for url, message in [
        ("ftp://93.184.216.34/", "must start with http:// or https://"),
        ("http://me:pw@93.184.216.34/", "must not contain a user name or password"),
        ("http://127.0.0.1:8080/", "private or reserved"),
        ("http://169.254.169.254/latest", "private or reserved"),
        ("", "Enter the URL to send webhooks to."),
    ]:
        response = owner.post("/orgs/acme/apps/new", {**APP, "webhook_url": url})
        assert response.status_code == 400
        page = response.get_data(as_text=True)
        assert message in page, url
        assert 'class="field has-error"' in page
    assert count_apps(app) == 0


def test_duplicate_name_in_the_org_is_refused(app, owner):
    owner.post("/orgs/acme/apps/new", APP)
    response = owner.post("/orgs/acme/apps/new", APP)
    assert response.status_code == 400
    assert "already has an app named" in response.get_data(as_text=True)
    assert count_apps(app) == 1


def test_members_can_read_but_not_register(app, make_user, owner, session):
    owner.post("/orgs/acme/apps/new", APP)
    make_user("member@example.com", "acme", "member")
    member = type(owner)(app.test_client())
    member.login("member@example.com")
    page = member.get("/orgs/acme/apps/pager-bridge").get_data(as_text=True)
    assert "Pager bridge" in page and "Only owners and managers can see the secret." in page
    assert "Reveal secret" not in page and "Send test alert" not in page
    assert member.post("/orgs/acme/apps/new", {**APP, "name": "Other"}).status_code == 403
    assert member.post("/orgs/acme/apps/pager-bridge/secret").status_code == 403
    assert member.post("/orgs/acme/apps/pager-bridge/test-alert").status_code == 403
    assert count_apps(app) == 1


def test_another_orgs_app_is_a_404(app, make_user, owner):
    owner.post("/orgs/acme/apps/new", APP)
    make_user("eve@example.com", "evil-corp", "owner")
    eve = type(owner)(app.test_client())
    eve.login("eve@example.com")
    for path in ["/orgs/acme/apps", "/orgs/acme/apps/pager-bridge", "/orgs/evil-corp/apps/pager-bridge",
                 "/orgs/acme/apps/pager-bridge/requests"]:
        assert eve.get(path).status_code == 404, path
    for path in ["/orgs/acme/apps/pager-bridge/secret", "/orgs/acme/apps/pager-bridge/test-alert",
                 "/orgs/evil-corp/apps/pager-bridge/test-alert", "/orgs/acme/apps/new"]:
        assert eve.post(path, APP).status_code == 404, path
    assert count_apps(app) == 1


def test_app_page_shows_ids_and_hides_the_secret_until_revealed(app, owner):
    owner.post("/orgs/acme/apps/new", APP)
    with app.app_context():
        sentry_app = db.session.scalar(select(SentryApp))
        secret, uuid, installation = sentry_app.client_secret, sentry_app.uuid, sentry_app.installation.uuid
    page = owner.get("/orgs/acme/apps/pager-bridge").get_data(as_text=True)
    assert "pager-bridge" in page and uuid in page and installation in page and "https://93.184.216.34/hook" in page
    assert secret not in page and "Reveal secret" in page
    fragment = owner.post("/orgs/acme/apps/pager-bridge/secret", htmx=True).get_data(as_text=True)
    assert secret in fragment and "whsec_" in fragment and "<html" not in fragment
    full = owner.post("/orgs/acme/apps/pager-bridge/secret").get_data(as_text=True)
    assert secret in full and "Request Log" in full


def test_reveal_needs_the_csrf_token(app, owner):
    owner.post("/orgs/acme/apps/new", APP)
    response = owner.client.post("/orgs/acme/apps/pager-bridge/secret", headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)


def test_edit_app_changes_url_and_resources_and_is_audited(app, owner):
    owner.post("/orgs/acme/apps/new", APP)
    form = owner.get("/orgs/acme/apps/pager-bridge/edit").get_data(as_text=True)
    assert 'value="https://93.184.216.34/hook"' in form
    assert '<input checked id="issue" name="issue"' in form and '<input checked id="error"' not in form
    response = owner.post("/orgs/acme/apps/pager-bridge/edit", {"name": "Pager bridge", "webhook_url": "https://93.184.216.35/v2", "error": "y"})
    assert response.status_code == 302
    with app.app_context():
        sentry_app = db.session.scalar(select(SentryApp))
        assert (sentry_app.webhook_url, sentry_app.resource_list) == ("https://93.184.216.35/v2", ["error"])
    audit = owner.get("/orgs/acme/audit-log").get_data(as_text=True)
    audit = audit[audit.index("<tbody>"):]
    assert "App edited" in audit and "url: https://93.184.216.34/hook → https://93.184.216.35/v2" in audit
    assert "resources: issue, comment → error" in audit and "[" not in audit  # no Python lists


def test_edit_app_with_a_bad_url_changes_nothing(app, owner):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    owner.post("/orgs/acme/apps/new", APP)
    response = owner.post("/orgs/acme/apps/pager-bridge/edit", {"name": "Pager bridge", "webhook_url": "http://10.0.0.5/"})
    assert response.status_code == 400 and "private or reserved" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(SentryApp)).webhook_url == "https://93.184.216.34/hook"


def test_a_url_at_hookline_itself_is_refused_but_its_host_on_another_port_is_not(app, owner, receiver):
    app.config["BASE_URL"] = "http://localhost:5999"
    response = owner.post("/orgs/acme/apps/new", {**APP, "webhook_url": "http://localhost:5999/api/1/store/"})
    assert response.status_code == 400
    assert ("This URL points at Hookline itself (localhost:5999 is Hookline's BASE_URL); deliveries to it would come "
            "back as events and loop. Use your receiver's URL.") in html.unescape(response.get_data(as_text=True))
    assert count_apps(app) == 0
    receiver_port = urlsplit(receiver.url("/")).port
    other_port = owner.post("/orgs/acme/apps/new", {**APP, "webhook_url": f"http://localhost:{receiver_port}/hook"})
    assert other_port.status_code == 302
    assert owner.post("/orgs/acme/apps/new", {**APP, "name": "Elsewhere"}).status_code == 302  # an unrelated host
    assert count_apps(app) == 2


def test_editing_the_url_to_hookline_itself_changes_nothing(app, owner):
    owner.post("/orgs/acme/apps/new", APP)
    response = owner.post("/orgs/acme/apps/pager-bridge/edit", {"name": "Pager bridge",
                                                                 "webhook_url": "http://hookline.test/api/1/store/"})
    assert response.status_code == 400 and "points at Hookline itself" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(SentryApp)).webhook_url == "https://93.184.216.34/hook"


def test_a_url_at_the_address_the_dashboard_was_reached_on_is_refused(app, owner, live_server):
    """Through a real server: a name that resolves to the address and port this page came from is Hookline too."""
    browser = requests.Session()
    token = re.search(r'name="csrf-token" content="([^"]+)"', browser.get(f"{live_server}/login").text).group(1)
    browser.post(f"{live_server}/login", data={"email": "owner@example.com", "password": PASSWORD, "csrf_token": token})
    port = urlsplit(live_server).port
    response = browser.post(f"{live_server}/orgs/acme/apps/new", allow_redirects=False, data={
        **APP, "webhook_url": f"http://localhost:{port}/api/1/envelope/", "csrf_token": token})
    assert response.status_code == 400
    assert (f"This URL points at Hookline itself (localhost resolves to 127.0.0.1, and 127.0.0.1:{port} is the "
            f"address this request arrived on)") in html.unescape(response.text)
    assert count_apps(app) == 0


def test_a_host_that_does_not_resolve_is_saved_with_a_warning(app, owner):
    response = owner.post("/orgs/acme/apps/new", {**APP, "webhook_url": "https://hooks.does-not-exist.invalid/in"})
    assert response.status_code == 302
    page = html.unescape(owner.get(response.headers["Location"]).get_data(as_text=True))
    assert "Registered Pager bridge." in page
    assert "hooks.does-not-exist.invalid does not resolve from this server right now" in page
    with app.app_context():
        assert db.session.query(SentryApp).one().webhook_url == "https://hooks.does-not-exist.invalid/in"
