"""The issues list: search, filters, sort and pages, all in the URL; the project page's link filters by project."""

import re
from datetime import datetime, timedelta
from html import unescape

import pytest
from sqlalchemy import select

from tests.alert_world import raise_and_capture
from webapp.alerts.issue_search import PAGE_SIZE, IssueQuery, issue_search, search_issues
from webapp.apps.projects import create_project
from webapp.core.extensions import db
from webapp.models import Group, Organization

START = datetime(2026, 11, 1, 12, 0)


@pytest.fixture
def issues(app, world):
    """Web has PAGE_SIZE + 5 unresolved issues "Web problem <i>": the higher i, the later last seen, the
    earlier first seen, and the fewer events. Mobile has four seen at one moment (so the newest id comes first): unresolved,
    resolved, ignored, and a fatal one whose culprit mentions "checkout"."""
    with app.app_context():
        organization = db.session.scalar(select(Organization).where(Organization.slug == "acme"))
        mobile = create_project(organization, "Mobile")
        rows = [dict(project_id=world.project_id, title=f"Web problem {i}", culprit=f"web.views in view_{i}",
                     last_seen=START + timedelta(minutes=i), first_seen=START - timedelta(minutes=i), times_seen=100 - i)
                for i in range(PAGE_SIZE + 5)]
        rows += [dict(project_id=mobile.id, title=f"Mobile {status}", status=status, culprit="app.sync",
                      last_seen=START, first_seen=START, times_seen=1) for status in ("unresolved", "resolved", "ignored")]
        rows.append(dict(project_id=mobile.id, title="TypeError: 100% broken_thing", culprit="app.Checkout in pay",
                         level="fatal", last_seen=START, first_seen=START, times_seen=1))
        for short_id, row in enumerate(rows, 1):
            db.session.add(Group(short_id=short_id, fingerprint_hash=f"{short_id:040d}", **row))
        db.session.commit()


def titles(page: str) -> list[str]:
    return [unescape(title) for title in re.findall(r'<a href="/orgs/acme/issues/\d+">([^<]+)</a>', page)]


def listing(owner, query: str = "") -> str:
    response = owner.get(f"/orgs/acme/issues{query}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_pages_without_a_cap_newest_first_and_links_keep_the_filters(owner, issues):
    first = listing(owner)
    unresolved = PAGE_SIZE + 5 + 2  # Web's, and Mobile's unresolved and fatal ones
    assert f"{unresolved} issues · page 1 of 2" in first
    assert titles(first)[:2] == [f"Web problem {PAGE_SIZE + 4}", f"Web problem {PAGE_SIZE + 3}"]
    assert len(titles(first)) == PAGE_SIZE
    next_link = unescape(re.search(r'<a rel="next" href="([^"]+)"', first).group(1))
    assert next_link == "/orgs/acme/issues?page=2"
    second = listing(owner, "?page=2")
    assert len(titles(second)) == unresolved - PAGE_SIZE
    assert set(titles(first)).isdisjoint(titles(second))
    assert '<span aria-current="page">2</span>' in second and 'rel="prev"' in second and 'rel="next"' not in second

    filtered = listing(owner, "?q=problem&sort=events&project=web")
    link = unescape(re.search(r'<a rel="next" href="([^"]+)"', filtered).group(1))
    assert link == "/orgs/acme/issues?q=problem&project=web&sort=events&page=2"
    assert titles(listing(owner, link.removeprefix("/orgs/acme/issues"))) == [
        f"Web problem {i}" for i in range(PAGE_SIZE, PAGE_SIZE + 5)]
    assert len(titles(listing(owner, "?page=99"))) == unresolved - PAGE_SIZE  # past the end: the last page


def test_search_matches_title_or_culprit_case_insensitively_and_literally(owner, issues):
    assert titles(listing(owner, "?q=CHECKOUT")) == ["TypeError: 100% broken_thing"]
    assert titles(listing(owner, "?q=100%25")) == ["TypeError: 100% broken_thing"]  # % is a character, not a wildcard
    assert titles(listing(owner, "?q=view_1")) == [f"Web problem {i}" for i in range(19, 9, -1)] + ["Web problem 1"]
    page = listing(owner, "?q=nothing+like+this")
    assert titles(page) == [] and "No unresolved issues match these filters." in page
    assert 'value="nothing like this"' in page  # the form shows the query it ran


def test_words_match_in_any_order_and_the_api_finds_what_the_page_finds(app, owner, issues):
    """One filter serves both: every word must match, each in the title or the culprit."""
    assert titles(listing(owner, "?q=checkout+typeerror")) == ["TypeError: 100% broken_thing"]  # culprit, title
    assert titles(listing(owner, "?q=problem+view_2&project=web")) == [f"Web problem {i}" for i in (29, 28, 27, 26, 25,
                                                                                                    24, 23, 22, 21, 20, 2)]
    with app.app_context():
        organization = db.session.scalar(select(Organization).where(Organization.slug == "acme"))
        for words, sentry_query in [("checkout typeerror", "checkout typeerror"), ("100%", "100%"),
                                    ("problem view_2", "is:unresolved problem view_2"), ("mobile", "is:unresolved mobile")]:
            page = search_issues(organization, IssueQuery(q=words)).groups
            api = db.session.scalars(issue_search(organization.id, sentry_query).limit(PAGE_SIZE)).all()
            assert [group.id for group in page] == [group.id for group in api] != [], words


def test_filters_by_project_status_and_level(owner, issues):
    assert titles(listing(owner, "?project=mobile")) == ["TypeError: 100% broken_thing", "Mobile unresolved"]
    assert titles(listing(owner, "?project=mobile&status=resolved")) == ["Mobile resolved"]
    assert titles(listing(owner, "?project=mobile&status=ignored")) == ["Mobile ignored"]
    assert len(titles(listing(owner, "?project=mobile&status=all"))) == 4
    page = listing(owner, "?level=fatal&status=all")
    assert titles(page) == ["TypeError: 100% broken_thing"]
    assert '<option value="fatal" selected>' in page and '<option value="all" selected>' in page
    assert titles(listing(owner, "?project=nope")) == []


def test_sorts_by_last_seen_first_seen_and_events(owner, issues):
    web = "?project=web"
    assert titles(listing(owner, web))[0] == f"Web problem {PAGE_SIZE + 4}"
    assert titles(listing(owner, web + "&sort=first_seen"))[:2] == ["Web problem 0", "Web problem 1"]
    assert titles(listing(owner, web + "&sort=events"))[:2] == ["Web problem 0", "Web problem 1"]
    assert '<option value="events" selected>' in listing(owner, web + "&sort=events")


def test_the_status_tabs_keep_the_other_filters(owner, issues):
    page = listing(owner, "?project=mobile&q=mobile")
    tabs = re.search(r'<p class="actions-row status-tabs">(.*?)</p>', page, re.S).group(1)
    assert 'href="/orgs/acme/issues?q=mobile&amp;project=mobile&amp;status=resolved"' in tabs
    assert 'href="/orgs/acme/issues?q=mobile&amp;project=mobile"' in tabs  # unresolved is the default


def test_the_environment_filter_uses_the_events_environments(owner, world, sdk, run_worker):
    raise_and_capture("card declined")  # the sdk fixture sends environment "test"
    run_worker()
    page = listing(owner)
    assert '<option value="test">test</option>' in page
    assert titles(listing(owner, "?environment=test")) == ["ValueError: card declined"]
    assert titles(listing(owner, "?environment=production")) == []
    assert '<option value="production" selected>' in listing(owner, "?environment=production")


def test_the_project_pages_link_lists_that_projects_issues(owner, issues):
    project_page = owner.get("/orgs/acme/projects/mobile").get_data(as_text=True)
    link = re.search(r'<a href="([^"]+)">Issues of Mobile</a>', project_page).group(1)
    assert link == "/orgs/acme/issues?project=mobile"
    page = listing(owner, link.removeprefix("/orgs/acme/issues"))
    assert "<h1>Issues of Mobile</h1>" in page
    assert titles(page) == ["TypeError: 100% broken_thing", "Mobile unresolved"]


def test_an_empty_list_says_where_issues_come_from(owner, world):
    page = listing(owner)
    assert "No unresolved issues. Send errors to a project's DSN" in page
    assert 'href="/orgs/acme/projects"' in page


def test_another_orgs_issues_are_not_listed(app, owner, issues, make_user):
    make_user("eve@example.com", "evil", "owner")
    eve = type(owner)(app.test_client())
    eve.login("eve@example.com")
    assert titles(eve.get("/orgs/evil/issues?status=all&project=web").get_data(as_text=True)) == []
    assert eve.get("/orgs/acme/issues").status_code == 404
