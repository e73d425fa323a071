"""Metric alert rules → incidents → metric_alert.* webhooks, with the clock driven by the test."""

import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest
from rq import Queue
from rq.job import Job
from sqlalchemy import select, update

from tests.engine.test_faults import wait_for
from webapp.alerts.alert_rules import save_metric_rule
from webapp.core import keys
from webapp.core.extensions import db
from webapp.dispatch.queues import get_queue
from webapp.dispatch.schedule import TICK_RETRIES, TICK_RETRY_SECONDS, enqueue_metric_alert_tick
from webapp.dispatch.tasks import notify_incident_changes
from webapp.models import Incident, IncidentStatusChange, MetricAlertRule, Project, SentryAppInstallation, utcnow


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
    from webapp.alerts.alert_rules import RuleValidationError

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


# The minute tick after a database outage: each minute evaluated once, in order, as of its own first second.

M0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)  # where the ``clock`` fixture starts


@contextmanager
def database_down(app):
    """Make every new database connection fail from here to the end of the block, as a stopped database does."""
    from sqlalchemy.exc import OperationalError

    def refuse(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    with app.app_context():
        engine = db.engine
        db.session.remove()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "connect", refuse)
        patch.setattr(engine, "raw_connection", refuse)
        yield


@pytest.fixture
def evaluations(monkeypatch):
    """Every evaluation of a rule from here on, as (rule id, the moment it was evaluated as of) in naive UTC."""
    from webapp.alerts import incidents

    seen, count_for_real = [], incidents.count_events

    def count_events(rule, now):
        seen.append((rule.id, now))
        return count_for_real(rule, now)

    monkeypatch.setattr(incidents, "count_events", count_events)
    return seen


def at(second: float) -> datetime:
    return (M0 + timedelta(seconds=second)).replace(tzinfo=None)


def queue_tick(app, clock, second: float) -> str:
    clock.current = M0 + timedelta(seconds=second)
    with app.app_context():
        return enqueue_metric_alert_tick(now=clock.current.timestamp())


def test_minutes_missed_in_a_150_s_database_outage_are_evaluated_once_each_when_it_ends(
        app, world, sdk, rule_id, receiver, run_worker, clock, evaluations):
    """The database is away from 12:00:40 to 12:03:10; the incident closed at 12:02 says so, sent once."""
    import threading

    from tests.conftest import move_scheduled_jobs

    with app.app_context():
        db.session.execute(update(MetricAlertRule).values(time_window_minutes=1))
        db.session.commit()
    queue_tick(app, clock, 5)
    run_worker()
    assert evaluations == [(rule_id, at(5))]
    clock.current = M0 + timedelta(seconds=10)
    send_events(sdk, 4)
    run_worker()  # each stored event evaluates the rule: critical
    assert statuses(receiver) == ["critical"]
    evaluations.clear()
    redis = app.extensions["redis"]
    ticks = []
    with database_down(app):
        ticks.append(queue_tick(app, clock, 65))
        slot = threading.Thread(target=run_worker)
        slot.start()  # the tick of 12:01 fails; it is retried in 5 s, and the slot waits for the database
        wait_for(lambda: Job.fetch(ticks[0], connection=redis).get_status() == "scheduled", 10,
                 what="the 12:01 tick failed")
        ticks += [queue_tick(app, clock, 125), queue_tick(app, clock, 185)]  # queued behind the waiting slot
        clock.current = M0 + timedelta(seconds=190)
    started = time.monotonic()
    slot.join(timeout=30)  # the database is back: the slot runs the queued ticks, the first catches up
    assert move_scheduled_jobs(redis) == [ticks[0]]
    run_worker()  # the 12:01 tick's retry: nothing left to do
    print(f"\n[ticks after a 150 s database outage] caught up {time.monotonic() - started:.1f} s after it ended")
    assert time.monotonic() - started < 30 and not slot.is_alive()
    assert evaluations == [(rule_id, at(60)), (rule_id, at(120)), (rule_id, at(190))]
    assert [Job.fetch(tick, connection=redis).get_status() for tick in ticks] == ["finished"] * 3
    with app.app_context():
        [incident] = db.session.query(Incident).all()
        assert (incident.status, incident.date_started, incident.date_closed) == ("closed", at(10), at(120))
        changes = [(change.status, change.date) for change in db.session.scalars(
            select(IncidentStatusChange).order_by(IncidentStatusChange.id))]
    assert changes == [("critical", at(10)), ("resolved", at(120))]  # closed in the minute the count fell
    run_worker()
    assert statuses(receiver) == ["critical", "resolved"]


def test_a_tick_retried_after_part_of_it_ran_evaluates_each_rule_once(
        app, world, rule_id, run_worker, clock, evaluations, monkeypatch):
    """The database goes away after the first rule's evaluation committed: the retry evaluates only the second."""
    from sqlalchemy.exc import OperationalError

    from tests.conftest import move_scheduled_jobs
    from webapp.alerts import incidents

    with app.app_context():
        project = db.session.get(Project, world.project_id)
        second_id = save_metric_rule(project, {"name": "Slow burn", "time_window_minutes": "60",
                                               "critical_threshold": "100"}, []).id
    spy = incidents.count_events

    def count_events(rule, now):
        if rule.id == second_id and second_id not in {evaluated for evaluated, _ in evaluations}:
            evaluations.append((rule.id, now))  # its first evaluation, cut short with the first rule's committed
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
        return spy(rule, now)

    monkeypatch.setattr(incidents, "count_events", count_events)
    tick = queue_tick(app, clock, 65)
    run_worker()
    assert Job.fetch(tick, connection=app.extensions["redis"]).get_status() == "scheduled"
    assert move_scheduled_jobs(app.extensions["redis"]) == [tick]
    run_worker()
    assert evaluations == [(rule_id, at(65)), (second_id, at(65)), (second_id, at(65))]
    with app.app_context():  # a copy of the tick (Redis forgot it was queued) in the same minute: nothing to do
        get_queue(keys.PERIODIC_QUEUE).enqueue("webapp.dispatch.tasks.evaluate_metric_alerts")
    run_worker()
    assert len(evaluations) == 3


def test_a_tick_owes_each_minute_since_the_last_evaluation_and_at_most_an_hour():
    from webapp.alerts.incidents import CATCH_UP_MINUTES, tick_moments

    now = at(3 * 60 + 10)
    assert tick_moments(None, now) == [(now, at(180))]  # a new rule: this minute
    assert tick_moments(at(185), now) == []  # evaluated this minute
    assert tick_moments(at(59), now) == [(at(60), at(60)), (at(120), at(120)), (now, at(180))]
    owed = tick_moments(at(180) - timedelta(days=1), now)
    assert len(owed) == CATCH_UP_MINUTES and owed[0][0] == at(180) - timedelta(minutes=CATCH_UP_MINUTES - 1)
