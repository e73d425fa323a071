"""Issues and events through the API: the same workflow, and the same webhooks, as the dashboard."""

import pytest

from tests.alert_world import raise_and_capture


@pytest.fixture
def issue(world, sdk, api, run_worker, receiver):
    event_id = raise_and_capture("card declined")
    run_worker()
    receiver.received.clear()
    return world.groups()[0], event_id


def test_get_issue_and_event(issue, api):
    group, event_id = issue
    body = api("GET", f"/api/0/organizations/acme/issues/{group.id}/").json
    assert body["title"] == "ValueError: card declined" and body["status"] == "unresolved" and body["shortId"] == "WEB-1"
    event = api("GET", f"/api/0/projects/acme/web/events/{event_id}/").json
    assert event["id"] == event["eventID"] == event_id and event["groupID"] == str(group.id)
    [exception] = [entry for entry in event["entries"] if entry["type"] == "exception"]
    assert exception["data"]["values"][-1]["type"] == "ValueError" and event["dateReceived"].endswith("Z")
    assert api("GET", "/api/0/projects/acme/web/events/ffffffffffffffffffffffffffffffff/").status_code == 404
    assert api("GET", f"/api/0/projects/acme/nope/events/{event_id}/").status_code == 404


def test_put_status_and_assignee_send_webhooks_as_the_token_user(issue, api, receiver, run_worker):
    group, _ = issue
    response = api("PUT", f"/api/0/organizations/acme/issues/{group.id}/",
                   json={"status": "resolved", "assignedTo": "member@example.com"})
    assert response.status_code == 200
    assert response.json["status"] == "resolved" and response.json["assignedTo"]["email"] == "member@example.com"
    run_worker()
    [resolved] = receiver.of("issue.resolved")
    [assigned] = receiver.of("issue.assigned")
    assert resolved.json["actor"]["type"] == "user" and resolved.json["actor"]["name"] == "owner"
    assert assigned.json["data"]["issue"]["assignedTo"]["email"] == "member@example.com"
    unassigned = api("PUT", f"/api/0/organizations/acme/issues/{group.id}/", json={"assignedTo": None})
    assert unassigned.json["assignedTo"] is None


@pytest.mark.parametrize(("body", "detail"), [
    ({"status": "deleted"}, "status: must be one of"),
    ({"status": 3}, "status: expected a string."),
    ({"assignedTo": "eve@example.com"}, "assignedTo: must be the id or email of a member"),
    ({"assignedTo": ["x"]}, "assignedTo: expected a string or a whole number."),
    ({"assignedTo": 2**40}, "assignedTo: must be the id or email of a member"),  # beyond any row id (PostgreSQL)
    ({"assignedTo": str(2**63)}, "assignedTo: must be the id or email of a member"),
])
def test_bad_issue_updates_are_400_and_change_nothing(issue, api, receiver, run_worker, body, detail):
    group, _ = issue
    response = api("PUT", f"/api/0/organizations/acme/issues/{group.id}/", json=body)
    assert response.status_code == 400 and detail in response.json["detail"]
    after = api("GET", f"/api/0/organizations/acme/issues/{group.id}/").json
    assert after["status"] == "unresolved" and after["assignedTo"] is None
    run_worker()
    assert receiver.received == []


def test_members_may_triage_but_other_orgs_get_404(issue, api):
    group, _ = issue
    assert api("PUT", f"/api/0/organizations/acme/issues/{group.id}/", who="member", json={"status": "ignored"}).status_code == 200
    assert api("GET", f"/api/0/organizations/acme/issues/{group.id}/", who="eve").status_code == 404
    assert api("PUT", f"/api/0/organizations/evil/issues/{group.id}/", who="eve", json={"status": "resolved"}).status_code == 404
    assert api("GET", f"/api/0/organizations/acme/issues/{group.id}/").json["status"] == "ignored"


def test_ids_beyond_the_databases_integers_are_not_found_or_refused(issue, api):
    """PostgreSQL refuses a number larger than its integer columns; SQLite would just find no row."""
    group, _ = issue
    assert api("GET", f"/api/0/organizations/acme/issues/{2**31}/").status_code == 404
    assert api("GET", f"/api/0/organizations/acme/issues/{2**63}/events/").status_code == 404
    listing = api("GET", "/api/0/organizations/acme/issues/?project=-3860727274724&project=2")
    assert listing.status_code == 400 and "project: expected project ids" in listing.json["detail"]
    assert api("GET", f"/api/0/organizations/acme/issues/{group.id}/").status_code == 200
