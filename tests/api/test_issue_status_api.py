"""Every way Sentry's API resolves or ignores an issue, as a receiver and an API client see it.

Events come from the real sentry-sdk (release web@1.2.3 unless a test picks another); each answer of the API is
checked against Sentry's OpenAPI document (tests/api/conftest.py), each webhook against tests/schemas/issue.json.
"""

from __future__ import annotations

import sentry_sdk

from tests.alert_world import raise_and_capture
from tests.test_alert_sources import add_issue_rule
from tests.test_payload_schemas import check


def capture_in(world, release: str | None, user: str | None = None) -> None:
    """Capture the test's usual error from ``release`` (None: no release), as user ``user``."""
    sentry_sdk.init(dsn=world.dsn, default_integrations=False, auto_enabling_integrations=False,
                    traces_sample_rate=None, release=release, environment="test",
                    # without a release the SDK would name one (the git commit): send none
                    before_send=None if release else lambda event, _: {**event, "release": None})
    if user is not None:
        sentry_sdk.set_user({"id": user})
    raise_and_capture()
    sentry_sdk.set_user(None)


def one_issue(world, sdk, run_worker, receiver) -> str:
    raise_and_capture()
    run_worker()
    receiver.received.clear()
    return str(world.groups()[0].id)


def put(api, issue_id: str, body: dict):
    response = api("PUT", f"/api/0/organizations/acme/issues/{issue_id}/", json=body)
    assert response.status_code == 200, response.json
    return response.json


def sent(receiver, run_worker, action: str) -> list[dict]:
    run_worker()
    check(receiver)
    return [request.json["data"] for request in receiver.of(f"issue.{action}")]


def test_resolved_in_the_next_release_comes_back_only_in_a_newer_release(world, sdk, api, receiver, run_worker):
    issue_id = one_issue(world, sdk, run_worker, receiver)
    answer = put(api, issue_id, {"status": "resolvedInNextRelease"})
    assert (answer["status"], answer["statusDetails"], answer["substatus"]) == ("resolved", {"inNextRelease": True},
                                                                               None)
    [resolved] = sent(receiver, run_worker, "resolved")
    assert resolved["resolution_type"] == "in_next_release"
    assert resolved["issue"]["statusDetails"] == {"inNextRelease": True}
    capture_in(world, "web@1.2.3")  # the release that was current: not fixed there yet
    capture_in(world, None)  # no release: Sentry cannot tell, the resolution stands
    assert sent(receiver, run_worker, "unresolved") == [] and world.groups()[0].status == "resolved"
    capture_in(world, "web@1.3.0")
    [back] = sent(receiver, run_worker, "unresolved")
    assert (back["issue"]["status"], back["issue"]["substatus"], back["issue"]["statusDetails"]) == (
        "unresolved", "regressed", {})
    assert api("GET", f"/api/0/issues/{issue_id}/").json["activity"][0]["type"] == "set_regression"


def test_the_same_through_statusdetails_and_in_a_named_release(world, sdk, api, receiver, run_worker):
    issue_id = one_issue(world, sdk, run_worker, receiver)
    assert put(api, issue_id, {"status": "resolved", "statusDetails": {"inNextRelease": True}})["statusDetails"] == {
        "inNextRelease": True}
    capture_in(world, "web@1.3.0")  # reopens it; now 1.3.0 is known, newer than 1.2.3
    run_worker()
    answer = put(api, issue_id, {"status": "resolved", "statusDetails": {"inRelease": "web@1.3.0"}})
    assert answer["statusDetails"] == {"inRelease": "web@1.3.0"}
    assert api("GET", f"/api/0/issues/{issue_id}/").json["activity"][0]["type"] == "set_resolved_in_release"
    receiver.received.clear()
    capture_in(world, "web@1.2.3")  # an older release: still broken there, as expected
    assert sent(receiver, run_worker, "unresolved") == [] and world.groups()[0].status == "resolved"
    capture_in(world, "web@1.3.0")  # the release it was fixed in: it was not
    assert [data["issue"]["substatus"] for data in sent(receiver, run_worker, "unresolved")] == ["regressed"]
    assert put(api, issue_id, {"status": "resolved", "statusDetails": {"inRelease": "latest"}})["statusDetails"] == {
        "inRelease": "web@1.3.0"}
    assert [data["resolution_type"] for data in sent(receiver, run_worker, "resolved")] == ["in_release",
                                                                                          "in_release"]


def test_ignored_for_a_time_comes_back_escalating_with_the_first_event_after_it(world, sdk, api, receiver, run_worker,
                                                                               clock):
    issue_id = one_issue(world, sdk, run_worker, receiver)
    answer = put(api, issue_id, {"status": "ignored", "statusDetails": {"ignoreDuration": 30}})
    assert answer["statusDetails"] == {"ignoreUntil": "2026-11-01T12:30:00.000Z"}
    assert answer["substatus"] == "archived_until_condition_met"
    [ignored] = sent(receiver, run_worker, "ignored")
    assert ignored["issue"]["statusDetails"] == {"ignoreUntil": "2026-11-01T12:30:00.000Z"}
    clock.advance(minutes=29, microseconds=1234)  # a whole-second time is a float JavaScript writes otherwise
    raise_and_capture()
    assert sent(receiver, run_worker, "unresolved") == [] and world.groups()[0].status == "ignored"
    clock.advance(minutes=2)
    raise_and_capture()
    [back] = sent(receiver, run_worker, "unresolved")
    assert (back["issue"]["status"], back["issue"]["substatus"], back["issue"]["statusDetails"]) == (
        "unresolved", "escalating", {})
    assert back["issue"]["count"] == "3"
    listed = api("GET", "/api/0/organizations/acme/issues/").json
    assert listed[0]["inbox"]["reason"] == 5  # Sentry's GroupInboxReason.ESCALATING


def test_ignored_until_more_events_counts_down_and_comes_back_on_the_last(world, sdk, api, receiver, run_worker):
    add_issue_rule(world, trigger="regression")
    issue_id = one_issue(world, sdk, run_worker, receiver)
    assert put(api, issue_id, {"status": "ignored", "ignoreCount": 3})["statusDetails"] == {"ignoreCount": 3}
    raise_and_capture()
    raise_and_capture()
    run_worker()
    assert api("GET", f"/api/0/issues/{issue_id}/").json["statusDetails"] == {"ignoreCount": 1}
    raise_and_capture()
    [back] = sent(receiver, run_worker, "unresolved")
    assert back["issue"]["substatus"] == "escalating"
    assert receiver.of("event_alert.triggered") == []  # escalating is not "a resolved issue reappears"


def test_ignored_until_events_within_a_window(world, sdk, api, receiver, run_worker, clock):
    issue_id = one_issue(world, sdk, run_worker, receiver)
    answer = put(api, issue_id, {"status": "ignored", "statusDetails": {"ignoreCount": 2, "ignoreWindow": 60}})
    assert answer["statusDetails"] == {"ignoreCount": 2, "ignoreWindow": 60}
    clock.advance(hours=2, microseconds=1234)  # a whole-second time is a float JavaScript writes otherwise
    raise_and_capture()  # the first event is two hours old: one in the hour
    assert sent(receiver, run_worker, "unresolved") == []
    clock.advance(minutes=10)
    raise_and_capture()  # two within the hour
    assert len(sent(receiver, run_worker, "unresolved")) == 1


def test_ignored_until_more_users(world, sdk, api, receiver, run_worker):
    capture_in(world, "web@1.2.3", user="ann")
    run_worker()
    issue_id = str(world.groups()[0].id)
    answer = put(api, issue_id, {"status": "ignored", "statusDetails": {"ignoreUserCount": 2}})
    assert answer["statusDetails"] == {"ignoreUserCount": 2}
    capture_in(world, "web@1.2.3", user="ann")
    capture_in(world, "web@1.2.3", user="bob")
    run_worker()
    assert api("GET", f"/api/0/issues/{issue_id}/").json["statusDetails"] == {"ignoreUserCount": 1}
    receiver.received.clear()
    capture_in(world, "web@1.2.3", user="cyd")
    assert len(sent(receiver, run_worker, "unresolved")) == 1


def test_archived_until_escalating_comes_back_on_an_hour_ten_times_its_usual(world, sdk, api, receiver, run_worker):
    issue_id = one_issue(world, sdk, run_worker, receiver)
    answer = put(api, issue_id, {"status": "ignored", "substatus": "archived_until_escalating", "statusDetails": {}})
    assert (answer["substatus"], answer["statusDetails"]) == ("archived_until_escalating",
                                                              {"ignoreUntilEscalating": True})
    [ignored] = sent(receiver, run_worker, "ignored")
    assert ignored["issue"]["statusDetails"] == {"ignoreUntilEscalating": True}
    for _ in range(8):  # nine events in the hour with the first: its usual week would give fewer than 10
        raise_and_capture()
    assert sent(receiver, run_worker, "unresolved") == []
    raise_and_capture()
    [back] = sent(receiver, run_worker, "unresolved")
    assert back["issue"]["substatus"] == "escalating"


def test_ignored_forever_three_ways_and_bulk(world, sdk, api, receiver, run_worker):
    issue_id = one_issue(world, sdk, run_worker, receiver)
    for body in ({"status": "ignored"}, {"status": "muted", "snoozeDuration": None},
                 {"status": "ignored", "substatus": "archived_forever"}):
        answer = put(api, issue_id, body)
        assert (answer["status"], answer["substatus"], answer["statusDetails"]) == ("ignored", "archived_forever", {})
    assert len(sent(receiver, run_worker, "ignored")) == 1  # the same status again changes nothing
    bulk = api("PUT", f"/api/0/organizations/acme/issues/?id={issue_id}", json={
        "status": "ignored", "statusDetails": {"ignoreDuration": 60, "ignoreCount": 100}})
    assert bulk.status_code == 200 and bulk.json["statusDetails"]["ignoreCount"] == 100
    assert set(bulk.json["statusDetails"]) == {"ignoreCount", "ignoreUntil"}
    [again] = sent(receiver, run_worker, "ignored")[1:]  # ignored another way: a change, sent
    assert again["issue"]["substatus"] == "archived_until_condition_met"
    unresolved = put(api, issue_id, {"status": "unresolved"})
    assert (unresolved["substatus"], unresolved["statusDetails"]) == ("new", {})  # one event: still new


def test_a_refused_change_of_several_issues_changes_none(world, sdk, api, receiver, run_worker):
    raise_and_capture("card declined")
    raise_and_capture("address missing", KeyError)
    run_worker()
    ids = [str(group.id) for group in world.groups()]
    receiver.received.clear()
    query = "&".join(f"id={issue_id}" for issue_id in ids)
    refused = api("PUT", f"/api/0/organizations/acme/issues/?{query}",
                  json={"status": "resolved", "statusDetails": {"inRelease": "web@9.9.9"}})
    assert refused.status_code == 400 and "no release 'web@9.9.9'" in refused.json["detail"]
    assert [group.status for group in world.groups()] == ["unresolved", "unresolved"]
    run_worker()
    assert receiver.received == []
