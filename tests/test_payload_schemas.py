"""Every webhook Hookline sends, checked against a JSON Schema of the shape Sentry documents for its resource.

The schemas in tests/schemas/ are written from Sentry's integration-platform webhook documentation (issue,
error, event_alert, comment, metric_alert); one scenario below makes Hookline send every action of each.
"""

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from tests.alert_world import raise_and_capture
from tests.receiver import rejected_by_sentrys_docs
from tests.test_alert_sources import add_issue_rule
from tests.test_incidents import evaluate, send_events
from webapp.alerts.alert_rules import save_metric_rule
from webapp.core.extensions import db
from webapp.dispatch.payloads import encode
from webapp.models import Comment, Group, Project

SCHEMAS = {path.stem: json.loads(path.read_text()) for path in (Path(__file__).parent / "schemas").glob("*.json")}


def check(receiver) -> list[str]:
    """Validate each received payload against its resource's schema and verify it as receivers written from
    Sentry's docs do (Python and Node re-serialise the parsed body); return "resource.action" of each."""
    received = receiver.received
    assert rejected_by_sentrys_docs(receiver) == []
    seen = []
    for request in received:
        resource = request.headers["Sentry-Hook-Resource"]
        validator = Draft202012Validator(SCHEMAS[resource], format_checker=FormatChecker())
        errors = sorted(validator.iter_errors(request.json), key=lambda error: list(error.path))
        assert not errors, f"{resource}.{request.json['action']}: " + "; ".join(
            f"{'/'.join(map(str, error.path))}: {error.message}" for error in errors[:5])
        seen.append(f"{resource}.{request.json['action']}")
    return seen


def test_a_body_is_written_as_sentry_writes_its_own():
    """Compact, text outside ASCII escaped, NaN and infinities as null (sentry.utils.json's encoder)."""
    body = encode({"action": "created", "data": {"title": "Café ☕ \ud83d\ude00", "values": [1, 2.5, float("nan")],
                                                 "nested": {"inf": float("inf"), "ok": True}}})
    assert body == (b'{"action":"created","data":{"title":"Caf\\u00e9 \\u2615 \\ud83d\\ude00",'
                    b'"values":[1,2.5,null],"nested":{"inf":null,"ok":true}}}')
    assert json.dumps(json.loads(body), separators=(",", ":")).encode() == body  # a Python receiver's rewrite


def test_the_schemas_catch_a_payload_that_strays_from_sentrys_shape():
    validator = Draft202012Validator(SCHEMAS["comment"])
    good = {"action": "created", "installation": {"uuid": "a8e5d37a-696c-4c54-adb5-b3f28d64c7de"},
            "actor": {"type": "user", "id": 1, "name": "colleen"},
            "data": {"comment": "hi", "project_slug": "web", "comment_id": 1234, "issue_id": 100,
                     "timestamp": "2022-03-02T21:51:44.118Z"}}
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "data": {**good["data"], "comment_id": "1234"}})  # a string id
    issue = Draft202012Validator(SCHEMAS["issue"])
    assert not issue.is_valid({"action": "assigned", "installation": good["installation"], "actor": good["actor"],
                               "data": {"issue": {"assignedTo": None}}})


def test_every_issue_error_alert_and_comment_payload_has_sentrys_shape(app, world, sdk, receiver, run_worker, owner,
                                                                       make_user):
    add_issue_rule(world, name="Page me", actions=[{"sentry_app_id": world.bare_id,
                                                     "settings": [{"name": "channel", "value": "#ops"}]}])
    raise_and_capture("card declined")
    run_worker()
    [group] = world.groups()
    member = make_user("dev@example.com", role="member")
    for form in ({"status": "resolved"}, {"status": "ignored"}, {"status": "unresolved"}):
        owner.post(f"/orgs/acme/issues/{group.id}/status", form)
    owner.post(f"/orgs/acme/issues/{group.id}/assign", {"assignee": str(member)})
    owner.post(f"/orgs/acme/issues/{group.id}/comments", {"text": "Looking into it"})
    with app.app_context():
        comment_id = db.session.query(Comment).one().id
    owner.post(f"/orgs/acme/issues/{group.id}/comments/{comment_id}", {"text": "Fixed in 1.2.4"})
    owner.post(f"/orgs/acme/issues/{group.id}/comments/{comment_id}/delete", {"confirm": "1"})
    run_worker()

    seen = check(receiver)
    assert set(seen) >= {"issue.created", "error.created", "event_alert.triggered", "issue.resolved",
                         "issue.ignored", "issue.unresolved", "issue.assigned", "comment.created",
                         "comment.updated", "comment.deleted"}, seen
    [assigned] = receiver.of("issue.assigned")
    assert assigned.json["data"]["assignee"]["email"] == "dev@example.com"
    [resolved] = receiver.of("issue.resolved")
    assert resolved.json["data"]["resolution_type"] == "now"
    created = receiver.of("issue.created")[0].json["data"]["issue"]
    assert created["metadata"]["function"] == "charge_card" and created["metadata"]["filename"]
    assert created["numComments"] == 0 and created["userCount"] == 0 and created["substatus"] == "new"
    assert receiver.of("issue.unresolved")[0].json["data"]["issue"]["numComments"] == 0


def test_user_count_counts_distinct_users_of_an_issue(app, world, sdk, receiver, run_worker, owner):
    for user in ({"id": "1"}, {"id": "2"}, {"id": "1"}, {"email": "x@example.com"}):
        sdk.set_user(user)
        raise_and_capture("card declined")
    run_worker()
    [group] = world.groups()
    owner.post(f"/orgs/acme/issues/{group.id}/status", {"status": "resolved"})
    run_worker()
    [resolved] = receiver.of("issue.resolved")
    assert resolved.json["data"]["issue"]["userCount"] == 3
    check(receiver)


@pytest.fixture
def metric_rule(world):
    with world.app.app_context():
        project = db.session.get(Project, world.project_id)
        fields = {"name": "Error spike", "time_window_minutes": "10", "warning_threshold": "2",
                  "critical_threshold": "4", "resolve_threshold": "1"}
        return save_metric_rule(project, fields, [{"sentry_app_id": world.bare_id, "settings": []}]).id


def test_every_metric_alert_payload_has_sentrys_shape(app, world, sdk, metric_rule, receiver, run_worker):
    send_events(sdk, 2, "a")
    run_worker()
    send_events(sdk, 2, "b")
    run_worker()
    evaluate(app, metric_rule, minutes_from_now=11)
    run_worker()
    seen = check(receiver)
    assert {"metric_alert.warning", "metric_alert.critical", "metric_alert.resolved"} <= set(seen), seen
    critical = receiver.of("metric_alert.critical")[0].json["data"]["metric_alert"]
    assert (critical["status_method"], critical["type"], critical["alert_rule"]["status"]) == (3, 2, 0)
