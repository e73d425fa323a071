"""An application using the real sentry-sdk → Hookline → webhooks, for each alert source."""

import re

from tests.alert_world import raise_and_capture, wait_unless_a_minute_has_time_left
from webapp.alerts.alert_rules import save_issue_rule
from webapp.alerts.ingest_outcomes import last_day_outcomes
from webapp.core import keys
from webapp.core.extensions import db
from webapp.models import IssueAlertRule, Project


def add_issue_rule(world, **fields):
    actions = fields.pop("actions", [{"sentry_app_id": world.bare_id, "settings": []}])
    values = {"name": "Page me", "trigger": "first_seen", "frequency_minutes": "30", **fields}
    with world.app.app_context():
        return save_issue_rule(db.session.get(Project, world.project_id), values, actions).id


def test_sdk_error_becomes_issue_created_and_error_created(world, sdk, receiver, run_worker, owner):
    event_id = raise_and_capture("card declined")
    run_worker()

    [created] = receiver.of("issue.created")
    [error] = receiver.of("error.created")
    assert created.path == "/all" and created.sentry_signature_ok and created.standard_webhooks_ok
    assert receiver.at("/alerts") == []  # not subscribed to anything
    issue = created.json["data"]["issue"]
    [group] = world.groups()
    assert issue["id"] == str(group.id) and issue["shortId"] == f"WEB-{group.short_id}"
    assert issue["title"] == "ValueError: card declined"
    assert issue["culprit"] == "tests.alert_world in charge_card"
    assert (issue["level"], issue["status"], issue["count"], issue["assignedTo"]) == ("error", "unresolved", "1", None)
    assert issue["project"]["slug"] == "web"
    assert issue["url"] == f"http://hookline.test/api/0/organizations/acme/issues/{group.id}/"
    assert issue["web_url"] == f"http://hookline.test/orgs/acme/issues/{group.id}"
    assert issue["project_url"] == "http://hookline.test/orgs/acme/projects/web"
    assert created.json["actor"] == {"type": "application", "id": "sentry", "name": "Sentry"}

    event = error.json["data"]["error"]
    assert event["event_id"] == event_id
    assert event["issue_id"] == str(group.id)
    assert event["release"] == "web@1.2.3" and event["environment"] == "test"
    assert event["exception"]["values"][-1]["type"] == "ValueError"
    assert event["url"] == f"http://hookline.test/api/0/projects/acme/web/events/{event_id}/"
    assert event["web_url"] == f"http://hookline.test/orgs/acme/issues/{group.id}/events/{event_id}"
    assert event["issue_url"] == issue["url"]
    # What Sentry adds to every event: the tags it derives (a plain capture sends none of its own), how the event
    # was grouped, where it happened, and the fields an SDK may leave out.
    tags = dict(event["tags"])
    assert {key: tags.get(key) for key in ("level", "handled", "mechanism", "environment", "release")} == {
        "level": "error", "handled": "yes", "mechanism": "generic", "environment": "test", "release": "web@1.2.3"}
    assert tags["server_name"] == event["server_name"]
    assert [key for key, _ in event["tags"]] == sorted(tags)
    assert event["fingerprint"] == ["{{ default }}"] and event["hashes"] == [group.fingerprint_hash]
    assert event["grouping_config"]["id"] and event["_ref"] == world.project_id and event["_ref_version"] == 2
    assert event["location"] == "tests/alert_world.py" and event["logger"] == "" and event["dist"] is None
    assert (event["metadata"]["filename"], event["metadata"]["function"]) == ("tests/alert_world.py", "charge_card")

    # The URLs in the payload open real resources (here, for a logged-in owner).
    path = lambda url: url.removeprefix("http://hookline.test")  # noqa: E731
    assert owner.get(path(event["url"])).json["eventID"] == event_id  # Sentry's event shape in the API
    assert owner.get(path(issue["url"])).json["title"] == "ValueError: card declined"
    assert "ValueError: card declined" in owner.get(path(event["web_url"])).get_data(as_text=True)
    assert "WEB-1" in owner.get(path(issue["web_url"])).get_data(as_text=True)
    assert "Web" in owner.get(path(issue["project_url"])).get_data(as_text=True)


def test_grouping_by_exception_fingerprint_and_message(world, sdk, receiver, run_worker):
    raise_and_capture("card declined")
    raise_and_capture("card declined")
    raise_and_capture("card expired")  # another message: another issue
    with sdk.new_scope() as scope:
        scope.fingerprint = ["payments", "declines"]
        raise_and_capture("card declined")
    sdk.capture_message("disk almost full", level="warning")
    sdk.capture_message("disk almost full", level="warning")
    sdk.flush()
    run_worker()

    groups = world.groups()
    assert [(g.title, g.times_seen) for g in groups] == [
        ("ValueError: card declined", 2), ("ValueError: card expired", 1),
        ("ValueError: card declined", 1), ("disk almost full", 2),
    ]
    assert groups[3].level == "warning"
    assert len(receiver.of("issue.created")) == 4
    assert len(receiver.of("error.created")) == 6


def test_tags_arrive_with_the_event(world, sdk, receiver, run_worker):
    sdk.set_tag("customer", "big-co")
    raise_and_capture()
    run_worker()
    [error] = receiver.of("error.created")
    assert ["customer", "big-co"] in error.json["data"]["error"]["tags"]


def test_issue_alert_rule_sends_event_alert_with_rule_and_settings(world, sdk, receiver, run_worker):
    rule_id = add_issue_rule(world, name="Page the on-call", actions=[
        {"sentry_app_id": world.bare_id, "settings": [{"name": "channel", "value": "#ops"}]}])
    event_id = raise_and_capture()
    run_worker()
    [alert] = receiver.of("event_alert.triggered", "/alerts")
    assert alert.sentry_signature_ok and alert.standard_webhooks_ok
    data = alert.json["data"]
    assert data["triggered_rule"] == "Page the on-call"
    assert data["issue_alert"] == {"id": rule_id, "title": "Page the on-call", "sentry_app_id": world.bare_id,
                                   "settings": [{"name": "channel", "value": "#ops"}]}
    assert data["event"]["event_id"] == event_id and data["event"]["issue_id"] == str(world.groups()[0].id)
    assert data["event"]["web_url"].startswith("http://hookline.test/orgs/acme/issues/")
    assert alert.json["action"] == "triggered"


def test_rule_without_settings_sends_no_issue_alert_block(world, sdk, receiver, run_worker):
    add_issue_rule(world)
    raise_and_capture()
    run_worker()
    [alert] = receiver.of("event_alert.triggered")
    assert "issue_alert" not in alert.json["data"] and alert.json["data"]["triggered_rule"] == "Page me"


def test_first_seen_rule_fires_once_per_new_issue(world, sdk, receiver, run_worker):
    add_issue_rule(world, trigger="first_seen")
    raise_and_capture("a")
    raise_and_capture("a")
    raise_and_capture("b")
    run_worker()
    assert len(receiver.of("event_alert.triggered")) == 2


def test_every_event_rule_is_throttled_per_issue(world, sdk, receiver, run_worker):
    add_issue_rule(world, trigger="every_event", frequency_minutes="10")
    for _ in range(3):
        raise_and_capture("a")
    raise_and_capture("b")
    run_worker()
    titles = [r.json["data"]["event"]["title"] for r in receiver.of("event_alert.triggered")]
    assert sorted(titles) == ["ValueError: a", "ValueError: b"]


def test_level_filter(world, sdk, receiver, run_worker):
    add_issue_rule(world, trigger="every_event", min_level="error")
    sdk.capture_message("just a warning", level="warning")
    sdk.capture_message("this is fatal", level="fatal")
    sdk.flush()
    run_worker()
    assert [r.json["data"]["event"]["title"] for r in receiver.of("event_alert.triggered")] == ["this is fatal"]


def test_regression_reopens_and_fires_regression_rules(world, sdk, receiver, run_worker, owner):
    add_issue_rule(world, trigger="regression")
    raise_and_capture()
    run_worker()
    group_id = world.groups()[0].id
    owner.post(f"/orgs/acme/issues/{group_id}/status", {"status": "resolved"})
    run_worker()
    assert receiver.of("event_alert.triggered") == []
    raise_and_capture()
    run_worker()
    [reopened] = receiver.of("issue.unresolved")
    assert reopened.json["data"]["issue"]["status"] == "unresolved"
    assert reopened.json["data"]["issue"]["substatus"] == "regressed"  # as Sentry says of an issue that came back
    assert reopened.json["data"]["issue"]["priority"] == "high"  # Sentry's priority of an error-level issue
    assert reopened.json["actor"]["type"] == "application"
    assert len(receiver.of("event_alert.triggered")) == 1
    assert world.groups()[0].status == "unresolved"
    # A person's change ends "regressed": ignored, then unresolved by hand, the issue is ongoing.
    owner.post(f"/orgs/acme/issues/{group_id}/status", {"status": "ignored"})
    owner.post(f"/orgs/acme/issues/{group_id}/status", {"status": "unresolved"})
    run_worker()
    assert [sent.json["data"]["issue"]["substatus"] for sent in receiver.of("issue.unresolved")] == ["regressed",
                                                                                                   "ongoing"]


def test_disabled_app_gets_nothing(world, sdk, receiver, run_worker):
    from webapp.models import SentryApp

    with world.app.app_context():
        db.session.get(SentryApp, world.subscribed_id).status = "disabled"
        db.session.commit()
    raise_and_capture()
    run_worker()
    assert receiver.at("/all") == []


def test_store_endpoint_and_sentry_key_query_parameter(world, app, receiver, run_worker):
    client = app.test_client()
    key = re.search(r"//(\w+)@", world.dsn).group(1)
    response = client.post(f"/api/{world.project_id}/store/?sentry_key={key}",
                           json={"message": "legacy client says hi", "level": "info"})
    assert response.status_code == 200 and len(response.json["id"]) == 32
    run_worker()
    [error] = receiver.of("error.created")
    assert error.json["data"]["error"]["title"] == "legacy client says hi"


def test_an_events_key_and_auto_address_are_filled_in_as_sentry_does(world, app, receiver, run_worker):
    """``user.ip_address: "{{auto}}"`` (browser SDKs) becomes the sender's address, through TRUSTED_PROXIES's
    X-Forwarded-For; ``key_id`` names the DSN's key."""
    from sqlalchemy import select
    from werkzeug.middleware.proxy_fix import ProxyFix

    from webapp.models import ProjectKey

    key = re.search(r"//(\w+)@", world.dsn).group(1)
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)  # what TRUSTED_PROXIES=1 installs
    response = app.test_client().post(
        f"/api/{world.project_id}/store/?sentry_key={key}", environ_base={"REMOTE_ADDR": "10.0.0.2"},
        headers={"X-Forwarded-For": "203.0.113.9"},
        json={"message": "checkout failed", "user": {"id": "42", "ip_address": "{{auto}}"}})
    assert response.status_code == 200
    run_worker()
    [error] = receiver.of("error.created")
    event = error.json["data"]["error"]
    assert event["user"] == {"id": "42", "ip_address": "203.0.113.9"}
    with app.app_context():
        assert event["key_id"] == str(db.session.scalar(select(ProjectKey.id).where(ProjectKey.public_key == key)))


def test_rules_of_another_project_do_not_fire(world, sdk, receiver, run_worker):
    from webapp.apps.projects import create_project
    from webapp.models import Organization

    with world.app.app_context():
        other = create_project(db.session.get(Organization, 1), "Other")
        save_issue_rule(other, {"name": "x", "trigger": "every_event", "frequency_minutes": "1"},
                        [{"sentry_app_id": world.bare_id, "settings": []}])
        assert db.session.query(IssueAlertRule).count() == 1
    raise_and_capture()
    run_worker()
    assert receiver.of("event_alert.triggered") == []


def test_an_alert_keeps_its_webhook_id_when_its_job_runs_again(world, sdk, receiver, run_worker, app):
    """The id is chosen when the rule fires, so a re-run job (a crashed worker) sends the same webhook-id."""
    from rq.job import Job
    from rq.registry import FinishedJobRegistry

    from webapp.core import keys
    from webapp.dispatch.tasks import send_alert_event

    add_issue_rule(world)
    raise_and_capture()
    run_worker()
    [alert] = receiver.of("event_alert.triggered")
    redis = app.extensions["redis"]
    jobs = [Job.fetch(job_id, connection=redis) for job_id in FinishedJobRegistry(keys.WEBHOOK_QUEUE, connection=redis).get_job_ids()]
    [job] = [job for job in jobs if job.func_name.endswith("send_alert_event")]
    with app.app_context():
        send_alert_event(*job.args)  # what RQ does when it re-runs the job
    assert [r.headers["Webhook-Id"] for r in receiver.of("event_alert.triggered")] == [alert.headers["Webhook-Id"]] * 2


def test_a_rule_never_reaches_another_organisations_app(world, sdk, receiver, run_worker, app):
    from webapp.accounts.people import get_or_create_organization
    from webapp.apps.internal_apps import register_internal_app

    with app.app_context():
        other = register_internal_app(get_or_create_organization("other"), "Theirs", receiver.url("/theirs"), []).id
    receiver.respond(200, path="/theirs")
    add_issue_rule(world, actions=[{"sentry_app_id": other, "settings": []}])  # a stale or forged action
    raise_and_capture()
    run_worker()
    assert receiver.at("/theirs") == []


def test_the_real_sentry_sdk_backs_off_when_its_key_is_over_quota(app, world, sdk, run_worker):
    """After one 429 the SDK drops events until Retry-After has passed, instead of sending each one."""
    wait_unless_a_minute_has_time_left()  # the quota is per minute: start the test well inside one
    app.config["INGEST_RATE_LIMIT"] = 2
    for n in range(6):
        raise_and_capture(f"declined {n}")
    run_worker()
    assert world.event_count() == 2
    with app.app_context():
        totals, _ = last_day_outcomes(world.project_id)
    assert (totals["accepted"], totals["rate_limited"]) == (2, 1)  # one 429, then the SDK sent nothing more

