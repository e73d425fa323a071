"""What a client written for Sentry's API sends, at Sentry's paths; every answer is also checked against Sentry's
published document (response_schemas.py)."""

import pytest

from tests.alert_world import raise_and_capture
from tests.api.response_schemas import mismatches
from webapp.core.extensions import db
from webapp.models import Group, Membership, find_user_by_email


@pytest.fixture
def two_issues(world, sdk, api, run_worker, receiver):
    first = raise_and_capture("card declined")
    raise_and_capture("card declined")  # the same issue: two events
    run_worker()
    raise_and_capture("address missing", KeyError)
    run_worker()
    receiver.received.clear()
    groups = sorted(world.groups(), key=lambda group: group.id)
    return groups, first


def state(app, group_id):
    with app.app_context():
        group = db.session.get(Group, group_id)
        return group.status, group.assignee_id


def test_issue_details_at_both_paths_by_id_and_short_id(two_issues, api, world):
    [group, _], _ = two_issues
    by_org = api("GET", f"/api/0/organizations/acme/issues/{group.id}/").json
    assert api("GET", f"/api/0/issues/{group.id}/").json == by_org
    assert api("GET", "/api/0/organizations/acme/issues/WEB-1/").json["id"] == str(group.id)
    assert by_org["count"] == "2" and len(by_org["stats"]["24h"]) == 24 and sum(n for _, n in by_org["stats"]["24h"]) == 2
    assert by_org["inbox"]["reason"] == 6  # ongoing: seen more than once
    assert api("GET", f"/api/0/issues/{group.id}/", who="eve").status_code == 404


def test_latest_oldest_and_project_events(two_issues, api):
    [group, _], first = two_issues
    events = api("GET", f"/api/0/organizations/acme/issues/{group.id}/events/").json
    latest = api("GET", f"/api/0/organizations/acme/issues/{group.id}/events/latest/").json
    oldest = api("GET", f"/api/0/organizations/acme/issues/{group.id}/events/oldest/").json
    assert latest["eventID"] == events[0]["eventID"] and oldest["eventID"] == first == events[-1]["eventID"]
    assert latest["previousEventID"] == first and oldest["nextEventID"] == latest["id"]
    assert api("GET", f"/api/0/organizations/acme/issues/{group.id}/events/recommended/").json["id"] == latest["id"]
    project_events = api("GET", "/api/0/projects/acme/web/events/?per_page=2")
    assert len(project_events.json) == 2 and 'rel="next"; results="true"' in project_events.headers["Link"]


def test_limit_and_short_id_lookup(two_issues, api):
    [group, other], _ = two_issues
    page = api("GET", "/api/0/organizations/acme/issues/?limit=1")
    assert len(page.json) == 1 and 'rel="next"; results="true"' in page.headers["Link"]
    found = api("GET", "/api/0/organizations/acme/issues/?shortIdLookup=1&query=WEB-2").json
    assert [issue["id"] for issue in found] == [str(other.id)]
    for bad in ("limit=0", "limit=101", "limit=x", "shortIdLookup=maybe"):
        response = api("GET", f"/api/0/organizations/acme/issues/?{bad}")
        assert response.status_code == 400 and bad.split("=")[0] in response.json["detail"]


def test_bulk_update_by_id_with_sentrys_assignees(app, two_issues, api, receiver, run_worker):
    groups, _ = two_issues
    ids = "&".join(f"id={group.id}" for group in groups)
    member_id = find_user_by_email_id(app, "member@example.com")
    response = api("PUT", f"/api/0/projects/acme/web/issues/?{ids}",
                   json={"status": "resolved", "assignedTo": f"user:{member_id}"})
    assert response.status_code == 200, response.json
    assert response.json["status"] == "resolved" and response.json["assignedTo"]["id"] == str(member_id)
    assert [state(app, group.id) for group in groups] == [("resolved", member_id)] * 2
    run_worker()
    assert len(receiver.of("issue.resolved")) == 2 and len(receiver.of("issue.assigned")) == 2
    response = api("PUT", f"/api/0/organizations/acme/issues/?{ids}", json={"assignedTo": "manager@example.com",
                                                                            "status": "muted"})
    manager_id = find_user_by_email_id(app, "manager@example.com")
    assert [state(app, group.id) for group in groups] == [("ignored", manager_id)] * 2
    api("PUT", f"/api/0/organizations/acme/issues/{groups[0].id}/", json={"assignedTo": None})
    assert state(app, groups[0].id) == ("ignored", None)


def find_user_by_email_id(app, email):
    with app.app_context():
        return find_user_by_email(email).id


REFUSED = [
    ("", {"status": "resolved"}, 400, "id: name the issues"),
    ("?id=x", {"status": "resolved"}, 400, "id: expected issue ids"),
    ("?id={0}&id=999999", {"status": "resolved"}, 404, "no issue 999999"),
    ("?id={0}", {"hasSeen": True}, 400, "hasSeen: Hookline does not keep"),
    ("?id={0}", {"isBookmarked": True}, 400, "isBookmarked: Hookline has no bookmarks"),
    ("?id={0}", {"priority": "low"}, 400, "priority: Hookline derives"),
    ("?id={0}", {"status": "resolved", "statusDetails": {"inRelease": "1.0"}}, 400, "inRelease: project web has no "
                                                                                   "release '1.0'"),
    ("?id={0}", {"status": "ignored", "statusDetails": {"ignoreDuration": -5}}, 400, "ignoreDuration: must be a whole"),
    ("?id={0}", {"status": "ignored", "statusDetails": {"inRelease": "web@1.2.3", "ignoreDuration": 30}}, 400,
     "inRelease is for resolving an issue"),
    ("?id={0}", {"status": "resolved", "statusDetails": {"inRelease": "web@1.2.3", "ignoreDuration": 30}}, 400,
     "ignoreDuration is for ignoring an issue"),
    ("?id={0}", {"status": "ignored", "statusDetails": {"ignoreCount": 10, "ignoreUserWindow": 60}}, 400,
     "ignoreUserWindow: Hookline counts an issue's users since it was ignored"),
    ("?id={0}", {"status": "ignored", "statusDetails": {"ignoreWindow": 60}}, 400, "ignoreWindow: give ignoreCount"),
    ("?id={0}", {"status": "ignored", "statusDetails": {"ignoreCount": 10, "ignoreWindow": 10081}}, 400,
     "ignoreWindow: must be a whole number from 1 to 10080"),
    ("?id={0}", {"status": "ignored", "ignoreDuration": "30"}, 400, "ignoreDuration: must be a whole number"),
    ("?id={0}", {"status": "resolved", "statusDetails": {"inCommit": {"commit": "abc"}}}, 400,
     "inCommit: Hookline does not know commits"),
    ("?id={0}", {"status": "resolved", "statusDetails": {"inNextRelease": True, "inRelease": "web@1.2.3"}}, 400,
     "inNextRelease and inRelease cannot both be given"),
    ("?id={0}", {"statusDetails": {"ignoreDuration": 30}}, 400, "status: say which status"),
    ("?id={0}", {"status": "unresolved", "statusDetails": {"ignoreDuration": 30}}, 400,
     "statusDetails: an unresolved issue has no details"),
    ("?id={0}", {"status": "unresolved", "substatus": "regressed"}, 400,
     "substatus: an unresolved issue's substatus follows from its events"),
    ("?id={0}", {"status": "archived"}, 400, "status: must be one of"),
    ("?id={0}", {"status": "ignored", "substatus": "archived_until_escalating",
                 "statusDetails": {"ignoreCount": 5}}, 400, "ignoreUntilEscalating cannot be combined"),
    ("?id={0}", {"assignedTo": "team:1"}, 400, "Hookline has no teams"),
    ("?id={0}", {"assignedTo": "user:999999", "status": "resolved"}, 400, "assignedTo: must be"),
]


def test_what_hookline_cannot_do_is_a_400_or_404_and_changes_nothing(app, two_issues, api, receiver, run_worker):
    [group, _], _ = two_issues
    for query, body, status, detail in REFUSED:
        response = api("PUT", "/api/0/organizations/acme/issues/" + query.format(group.id), json=body)
        assert response.status_code == status and detail in response.json["detail"], (query, body, response.json)
        if query.startswith("?id={0}") and status == 400:  # the body is at fault: one issue refuses it too
            single = api("PUT", f"/api/0/issues/{group.id}/", json=body)
            assert single.status_code == 400 and detail in single.json["detail"]
        assert state(app, group.id) == ("unresolved", None)
    run_worker()
    assert receiver.received == []


def test_members_me_and_sentrys_role_names(app, api):
    me = api("GET", "/api/0/organizations/acme/members/me/", who="member")
    assert me.status_code == 200 and me.json["email"] == "member@example.com" and me.json["isOnlyOwner"] is False
    assert api("GET", "/api/0/organizations/acme/members/me/").json["isOnlyOwner"] is True
    with app.app_context():
        member = db.session.query(Membership).filter_by(user_id=find_user_by_email("member@example.com").id).one()
    changed = api("PUT", f"/api/0/organizations/acme/members/{member.id}/", json={"orgRole": "admin"})
    assert changed.status_code == 200 and changed.json["orgRole"] == "manager"
    billing = api("PUT", f"/api/0/organizations/acme/members/{member.id}/", json={"orgRole": "billing"})
    assert billing.status_code == 400 and "billing is not a role Hookline has" in billing.json["detail"]
    assert api("GET", f"/api/0/organizations/acme/members/{member.id}/").json["orgRole"] == "manager"


def test_apps_and_organisations_by_id_and_the_installations(app, api, pager_api):
    with app.app_context():
        from webapp.models import SentryApp
        sentry_app = db.session.query(SentryApp).one()
        app_id, org_id = sentry_app.id, sentry_app.organization_id
    assert api("GET", f"/api/0/sentry-apps/{app_id}/").json["slug"] == "pager"
    [installation] = api("GET", f"/api/0/organizations/{org_id}/sentry-app-installations/").json
    assert installation == {"app": {"uuid": pager_api["uuid"], "slug": "pager", "sentryAppId": app_id},
                            "organization": {"slug": "acme"}, "uuid": pager_api["installation"]["uuid"],
                            "status": "installed"}


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/api/0/organizations/acme/releases/", 404),
    ("GET", "/api/0/organizations/acme/releases", 404),
    # A path Hookline serves, with a method it does not: 405 with the methods it takes (as Sentry answers)
    ("DELETE", "/api/0/organizations/acme/issues/1/", 405),
    ("POST", "/api/0/organizations/acme/issues/", 405),
])
def test_what_hookline_does_not_implement_is_refused_saying_so(api, method, path, status):
    response = api(method, path)
    assert response.status_code == status and "is not implemented by Hookline" in response.json["detail"]
    assert path in response.json["detail"]
    if status == 405:
        assert "GET" in response.headers["Allow"]


def test_the_checker_finds_a_missing_field_and_takes_nullable_as_null():
    """The schema check itself: Sentry's `nullable` allows null; a missing required field is reported."""
    app_shape = {"allowedOrigins": [], "avatars": [], "events": [], "featureData": [], "isAlertable": True,
                 "metadata": "", "name": "x", "schema": "", "scopes": [], "slug": "x", "status": "internal",
                 "uuid": "u", "verifyInstall": False, "webhookEvents": [], "webhookHeaders": [], "webhookUrl": None}
    assert not [m for m in mismatches("GET", "/api/0/sentry-apps/x/", 200, app_shape) if m.startswith("Sentry")]
    missing = {key: value for key, value in app_shape.items() if key != "webhookEvents"}
    assert any("'webhookEvents' is a required property" in m and m.startswith("Sentry")
               for m in mismatches("GET", "/api/0/sentry-apps/x/", 200, missing))
    assert any("None is not of type 'string'" in m
               for m in mismatches("GET", "/api/0/sentry-apps/x/", 200, {**app_shape, "name": None}))
