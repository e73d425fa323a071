"""Metric alert rules → incidents → metric_alert.* webhooks, with the clock driven by the test."""

from datetime import timedelta

import pytest
from rq import Queue
from rq.job import Job

from webapp import keys
from webapp.alert_rules import save_metric_rule
from webapp.dispatch.schedule import TICK_RETRIES, TICK_RETRY_SECONDS, enqueue_metric_alert_tick
from webapp.dispatch.tasks import notify_incident_changes
from webapp.extensions import db
from webapp.models import Incident, MetricAlertRule, Project, SentryAppInstallation, utcnow


@pytest.fixture
def rule_id(world):
    with world.app.app_context():
        project = db.session.get(Project, world.project_id)
        fields = {"name": "Error spike", "time_window_minutes": "10", "warning_threshold": "2",
                  "critical_threshold": "4", "resolve_threshold": "1"}
        actions = [{"sentry_app_id": world.bare_id, "settings": [{"name": "team", "value": "payments"}]}]
        return save_metric_rule(project, fields, actions).id


def send_events(sdk, n, prefix="e"):
    for i in range(n):
        sdk.capture_message(f"{prefix}{i}", level="error")
    sdk.flush()


def evaluate(app, rule_id, minutes_from_now=0):
    with app.app_context():
        notify_incident_changes(db.session.get(MetricAlertRule, rule_id), utcnow() + timedelta(minutes=minutes_from_now))


def statuses(receiver):
    return [r.json["action"] for r in receiver.received if r.headers["Sentry-Hook-Resource"] == "metric_alert"]


def test_incident_opens_goes_critical_and_resolves_each_sent_once(app, world, sdk, rule_id, receiver, run_worker, owner):
    send_events(sdk, 2, "a")
    run_worker()
    assert statuses(receiver) == ["warning"]
    send_events(sdk, 2, "b")
    run_worker()
    assert statuses(receiver) == ["warning", "critical"]
    evaluate(app, rule_id)  # nothing changed: nothing sent
    run_worker()
    assert statuses(receiver) == ["warning", "critical"]
    evaluate(app, rule_id, minutes_from_now=11)  # the window has moved past every event
    evaluate(app, rule_id, minutes_from_now=12)
    run_worker()
    assert statuses(receiver) == ["warning", "critical", "resolved"]

    critical = receiver.of("metric_alert.critical")[0]
    assert critical.path == "/alerts" and critical.sentry_signature_ok and critical.standard_webhooks_ok
    data = critical.json["data"]
    incident = data["metric_alert"]
    assert incident["identifier"] == "1" and incident["title"] == "Error spike" and incident["date_closed"] is None
    rule = incident["alert_rule"]
    assert rule["name"] == "Error spike" and rule["aggregate"] == "count()" and rule["time_window"] == 10
    with app.app_context():
        installation_uuid = db.session.query(SentryAppInstallation).filter_by(sentry_app_id=world.bare_id).one().uuid
    labels = {trigger["label"]: trigger for trigger in rule["triggers"]}
    assert set(labels) == {"critical", "warning"} and labels["critical"]["alert_threshold"] == 4
    assert labels["critical"]["actions"][0]["sentry_app_installation_uuid"] == installation_uuid
    assert labels["critical"]["actions"][0]["settings"] == [{"name": "team", "value": "payments"}]
    assert data["description_title"] == "Critical: Error spike"
    assert data["description_text"] == "4 events in the last 10 minutes"
    assert data["web_url"] == "http://hookline.test/orgs/acme/incidents/1"
    resolved = receiver.of("metric_alert.resolved")[0].json["data"]["metric_alert"]
    assert resolved["date_closed"] is not None
    # Sentry's IncidentStatus and IncidentStatusMethod: closed (2) because the rule said so (3)
    assert (resolved["status"], resolved["status_method"]) == (2, 3)
    assert (incident["status"], incident["status_method"]) == (20, 3)

    with app.app_context():
        [row] = db.session.query(Incident).all()
        assert (row.status, row.metric_value) == ("closed", 0)
    assert "#1" in owner.get("/orgs/acme/incidents").get_data(as_text=True)
    assert "closed" in owner.get("/orgs/acme/incidents/1").get_data(as_text=True)
    assert owner.get("/orgs/acme/incidents/2").status_code == 404


def test_straight_to_critical_then_a_new_incident_after_resolving(app, world, sdk, rule_id, receiver, run_worker):
    send_events(sdk, 5)
    run_worker()
    evaluate(app, rule_id, minutes_from_now=11)
    send_events(sdk, 4, "again")
    run_worker()
    assert statuses(receiver) == ["critical", "resolved", "critical"]
    with app.app_context():
        assert [i.identifier for i in db.session.query(Incident).order_by(Incident.id)] == [1, 2]


def test_the_minute_tick_is_queued_once_per_minute_on_its_own_queue(app):
    with app.app_context():
        first = enqueue_metric_alert_tick(now=1_800_000_030)
        assert first == "hookline-metric-alert-tick-1800000000"
        assert enqueue_metric_alert_tick(now=1_800_000_045) is None  # another worker process: already queued
        assert enqueue_metric_alert_tick(now=1_800_000_061) == "hookline-metric-alert-tick-1800000060"
        queue = Queue(keys.PERIODIC_QUEUE, connection=app.extensions["redis"])
        assert queue.job_ids == [first, "hookline-metric-alert-tick-1800000060"]


def test_the_tick_evaluates_every_rule(app, world, sdk, rule_id, receiver, run_worker):
    from webapp.dispatch.queues import get_queue

    send_events(sdk, 3)
    with app.app_context():
        get_queue().enqueue("webapp.dispatch.tasks.evaluate_metric_alerts")
    run_worker()
    assert statuses(receiver) == ["warning"]


def test_a_tick_that_meets_a_database_outage_is_retried_within_seconds(app, world, rule_id, run_worker, monkeypatch):
    """Before: the tick had no retry, so each minute inside an outage went to the failed registry unevaluated."""
    from sqlalchemy.exc import OperationalError

    from tests.conftest import move_scheduled_jobs
    from webapp.dispatch import tasks

    evaluate_for_real, runs = tasks.evaluate_metric_alerts, []

    def evaluate():
        runs.append("tried")
        if len(runs) == 1:  # the database is away for the first try
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
        return evaluate_for_real()

    monkeypatch.setattr(tasks, "evaluate_metric_alerts", evaluate)
    with app.app_context():
        tick = enqueue_metric_alert_tick()
    run_worker()
    redis = app.extensions["redis"]
    job = Job.fetch(tick, connection=redis)
    assert job.get_status() == "scheduled" and job.retries_left == TICK_RETRIES  # the outage used up no retry
    assert TICK_RETRY_SECONDS <= 5
    assert move_scheduled_jobs(redis) == [tick]  # its time has come (RQ's scheduler moves it in 5 s)
    run_worker()
    assert runs == ["tried", "tried"]
    job = Job.fetch(tick, connection=redis)
    assert job.get_status() == "finished" and job.return_value() == 1  # one rule evaluated


def test_bad_metric_rule_input_is_refused(app, world):
    from webapp.alert_rules import RuleValidationError

    with app.app_context():
        project = db.session.get(Project, world.project_id)
        actions = [{"sentry_app_id": world.bare_id, "settings": []}]
        for fields, field in [
            ({"name": "x", "time_window_minutes": "10", "critical_threshold": "5", "warning_threshold": "5"}, "warning_threshold"),
            ({"name": "x", "time_window_minutes": "ten", "critical_threshold": "5"}, "time_window_minutes"),
            ({"name": "x", "time_window_minutes": "10", "critical_threshold": "5", "resolve_threshold": "9"}, "resolve_threshold"),
            ({"name": "", "time_window_minutes": "10", "critical_threshold": "5"}, "name"),
        ]:
            with pytest.raises(RuleValidationError) as caught:
                save_metric_rule(project, fields, actions)
            assert field in caught.value.errors
        assert db.session.query(MetricAlertRule).count() == 0
