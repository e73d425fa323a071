"""GET /api/0/organizations/<org>/audit-logs/: Sentry's shape with labels and details, filters, Link pages."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from webapp.core.audit import EVENTS, record_audit
from webapp.core.extensions import db
from webapp.models import Organization, find_user_by_email

URL = "/api/0/organizations/acme/audit-logs/"
T0 = datetime(2026, 11, 1, 0, 0)


@pytest.fixture
def filled(app, api):
    """120 edits by the owner on 1 Nov and 3 automatic disables on 5 Nov (beside the tokens' entries)."""
    with app.app_context():
        organization_id = db.session.scalar(select(Organization.id).where(Organization.slug == "acme"))
        owner_id = find_user_by_email("owner@example.com").id
        for n in range(120):
            entry = record_audit(organization_id, "app.edit", actor_id=owner_id, target_label=f"App {n:03}",
                                 data={"webhook_url": ["https://a.example", "https://b.example"]})
            entry.datetime = T0 + timedelta(minutes=n)
        for n in range(3):
            entry = record_audit(organization_id, "app.disable", target_label=f"Broken {n}", data={"reason": "410 Gone"})
            entry.datetime = T0 + timedelta(days=4, hours=n)
        db.session.commit()
    return {"owner": str(owner_id)}


def next_link(response) -> str | None:
    found = re.search(r'<([^>]+)>; rel="next"; results="true"', response.headers["Link"])
    return found.group(1).replace("http://localhost", "") if found else None


def test_entries_in_sentrys_shape_with_their_label_and_details(api, filled):
    body = api("GET", URL + "?event=app.edit").json
    assert set(body) == {"rows", "options"} and body["options"] == list(EVENTS)
    newest = body["rows"][0]
    assert set(newest) == {"id", "actor", "event", "eventLabel", "ipAddress", "note", "targetObject", "targetUser",
                           "data", "details", "dateCreated"}
    assert (newest["event"], newest["eventLabel"], newest["note"]) == ("app.edit", "App edited", "App 119")
    assert newest["details"] == ["url: https://a.example → https://b.example"]
    assert newest["data"] == {"webhook_url": ["https://a.example", "https://b.example"]}
    assert newest["actor"]["email"] == "owner@example.com" and newest["dateCreated"] == "2026-11-01T01:59:00Z"


def test_cursor_pages_cover_every_entry_once(api, filled):
    seen, path, pages = [], URL + "?event=app.edit", 0
    while path:
        response = api("GET", path)
        assert response.status_code == 200
        seen += [row["note"] for row in response.json["rows"]]
        path, pages = next_link(response), pages + 1
        if path:
            assert "event=app.edit" in path
    assert pages == 2 and seen == [f"App {n:03}" for n in range(119, -1, -1)]


def test_filters_by_actor_and_time(api, filled):
    def notes(query):
        response = api("GET", URL + query)
        assert response.status_code == 200, response.json
        return [row["note"] for row in response.json["rows"]]

    assert notes("?actor=hookline") == ["Broken 2", "Broken 1", "Broken 0"]
    assert notes(f"?actor={filled['owner']}&event=token.create") == ["owner token"]
    assert notes("?start=2026-11-05&end=2026-11-05") == ["Broken 2", "Broken 1", "Broken 0"]
    assert notes("?start=2026-11-05T01:00:00%2B00:00&end=2026-11-05T02:00:00Z") == ["Broken 2", "Broken 1"]
    assert notes("?event=member.invite") == []  # a known event with nothing recorded yet


@pytest.mark.parametrize("query, detail", [
    ("?event=nope", "event: unknown event 'nope'"),
    ("?actor=nobody", "actor: 'nobody' is not the id of anyone in this organisation"),
    ("?start=2026-13-01", "start: '2026-13-01' is not a date"),
    ("?start=2026-11-02&end=2026-11-01", "end: must be after start."),
    ("?cursor=oops", "cursor: expected a cursor"),
])
def test_bad_filters_are_400_with_the_reason(api, filled, query, detail):
    response = api("GET", URL + query)
    assert response.status_code == 400 and detail in response.json["detail"]


def test_a_person_of_another_organisation_is_no_actor_here(app, api, filled):
    with app.app_context():
        eve_id = find_user_by_email("eve@example.com").id
    assert api("GET", URL + f"?actor={eve_id}").status_code == 400


def test_only_owners_and_managers_read_it(api, filled):
    assert api("GET", URL, who="manager").status_code == 200
    assert api("GET", URL, who="member").status_code == 403
    assert api("GET", URL, who="eve").status_code == 404
