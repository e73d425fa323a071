"""The edge check on what requests carry, ids beyond the database's integers, and headers built from user data."""

from __future__ import annotations

import json
import urllib.request

import pytest
from sqlalchemy import func, select

from tests.api.conftest import api, pager_api  # noqa: F401  (fixtures)
from webapp.core.extensions import db
from webapp.core.input_guard import parse_row_id
from webapp.core.netguard import AddressPolicy, InvalidWebhookURL, validate_webhook_url
from webapp.models import Comment, SentryApp


def app_names(app) -> list[str]:
    with app.app_context():
        return sorted(db.session.scalars(select(SentryApp.name)))


def test_a_host_outside_latin_1_is_created_once_and_its_warning_header_is_percent_encoded(app, api, live_server):
    """A real server sends headers as Latin-1: the Warning naming ☕.example used to fail after the commit."""
    request = urllib.request.Request(
        f"{live_server}/api/0/sentry-apps/", method="POST",
        data=json.dumps({"name": "Cup", "organization": "acme", "webhookUrl": "http://☕.example/hook",
                         "events": ["issue"]}).encode(),
        headers={"Authorization": f"Bearer {api.tokens['owner']}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
        assert json.load(response)["webhookUrl"] == "http://☕.example/hook"
        warning = response.headers["Warning"]
    assert warning.startswith('299 hookline "The host %E2%98%95.example does not resolve from this server')
    assert app_names(app) == ["Cup"]


@pytest.mark.parametrize("url", ["http://example.com/\r\nX-Injected: 1", "http://exa\nmple.com/", "http://example.com/a\tb"])
def test_a_webhook_url_with_a_line_break_or_tab_is_refused_and_nothing_is_saved(app, owner, api, url):
    response = api("POST", "/api/0/sentry-apps/", json={"name": "Pager", "organization": "acme", "webhookUrl": url})
    assert response.status_code == 400
    assert response.json["detail"].startswith("webhookUrl: a ")
    page = owner.post("/orgs/acme/apps/new", {"name": "Pager", "webhook_url": url, "issue": "y"})
    assert page.status_code == 400
    assert "line breaks, tabs or other control characters" in page.get_data(as_text=True)  # next to the field
    assert app_names(app) == []
    with app.app_context(), pytest.raises(InvalidWebhookURL, match="line breaks, tabs or other control characters"):
        validate_webhook_url(url, AddressPolicy.from_config(app.config))  # the CLI and the demo go through it too


def an_issue(world) -> int:
    """Store one event of project web (straight into the event store) and return its issue's id."""
    from webapp.alerts.eventstore import store_event
    from webapp.models import Project

    with world.app.app_context():
        store_event(db.session.get(Project, world.project_id), {"event_id": "b" * 32, "message": "boom"})
    return world.groups()[0].id


def test_a_comment_keeps_its_line_breaks_and_tabs_but_not_other_controls(app, owner, world):
    group_id = an_issue(world)
    assert owner.post(f"/orgs/acme/issues/{group_id}/comments", {"text": "Line one\r\n\tindented"}).status_code == 303
    refused = owner.post(f"/orgs/acme/issues/{group_id}/comments", {"text": "bell\x07"})
    assert refused.status_code == 400
    assert "a control character (U+0007) is not allowed here. Nothing was saved." in refused.get_data(as_text=True)
    with app.app_context():
        assert list(db.session.scalars(select(Comment.text))) == ["Line one\n\tindented"]  # kept as typed, with the line ending the workflow keeps


def test_a_nul_in_a_query_is_a_400_on_the_api_and_on_the_pages(owner, api):
    response = api("GET", "/api/0/organizations/acme/issues/?query=%00")
    assert response.status_code == 400
    assert response.json == {"detail": "The query parameter 'query': a NUL character (U+0000) is not allowed here. "
                                       "Nothing was saved."}
    page = owner.get("/orgs/acme/issues?project=%00")
    assert page.status_code == 400
    assert "The query parameter &#39;project&#39;: a NUL character" in page.get_data(as_text=True)


def test_a_lone_surrogate_and_a_body_nested_too_deeply_are_400s(app, api, pager_api):
    for body in ('{"name": "x\\ud800"}', "[" * 100_000 + "]" * 100_000, '{"a":' * 70 + "1" + "}" * 70):
        response = api.client.put("/api/0/sentry-apps/pager/", data=body, content_type="application/json",
                                  headers={"Authorization": f"Bearer {api.tokens['owner']}"})
        assert response.status_code == 400, body[:80]
        assert "detail" in response.json
    assert app_names(app) == ["Pager"]


@pytest.mark.parametrize("assignee", ["²", "99999999999999999999", "-1", "0", "٣"])
def test_an_assignee_that_is_no_id_is_a_400(owner, world, api, assignee):
    group_id = an_issue(world)
    page = owner.post(f"/orgs/acme/issues/{group_id}/assign", {"assignee": assignee})
    assert page.status_code == 400 and "Unknown assignee." in page.get_data(as_text=True)
    response = api("PUT", f"/api/0/organizations/acme/issues/{group_id}/", json={"assignedTo": assignee})
    assert response.status_code == 400
    assert response.json["detail"].startswith("assignedTo: must be the id or email of a member")
    assert world.groups()[0].assignee_id is None


@pytest.mark.parametrize("text, expected", [("1", 1), ("2147483647", 2147483647), ("2147483648", None), ("0", None),
                                            ("-1", None), ("²", None), ("٣", None), ("", None), (" 1", None),
                                            ("99999999999999999999", None), (7, 7), (True, None)])
def test_parse_row_id(text, expected):
    assert parse_row_id(text) == expected
