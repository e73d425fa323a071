"""A change seen by many apps goes out through a few runner jobs: every app gets it once, signed, within its
cap; deliveries no runner takes (lost runners, slow receivers) still go, one job each, and none runs twice."""

from __future__ import annotations

import time

import pytest
from rq import Queue
from rq.job import Job
from rq.rate_limit import RateLimitRegistry
from rq.registry import FinishedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import select

from tests.conftest import move_scheduled_jobs
from tests.lifecycle import log_entries, rq_jobs_run, send
from webapp.apps.internal_apps import register_internal_app
from webapp.core import keys
from webapp.core.extensions import db
from webapp.dispatch import fanout
from webapp.dispatch.fanout import FanOutRunner, notify_resource_change
from webapp.dispatch.queues import make_worker
from webapp.models import Organization, SentryApp

APPS = 6


@pytest.fixture(autouse=True)
def patient_runners(monkeypatch):
    """A cold first delivery (a new connection, a cold database) can take more than the 25 ms after which a runner
    lets the rest go one job each; the tests that count jobs must not depend on it (one test sets it back)."""
    monkeypatch.setattr(fanout, "RELEASE_AFTER_SECONDS", 5.0)


@pytest.fixture
def apps(app, make_user, receiver):
    """Six apps of org acme subscribed to issues, each on its own path of the receiver; return their ids."""
    make_user("owner@example.com", "acme", "owner")
    with app.app_context():
        organization = db.session.scalar(select(Organization).where(Organization.slug == "acme"))
        ids = []
        for index in range(APPS):
            sentry_app = register_internal_app(organization, f"App {index}", receiver.url(f"/hook/{index}"), ["issue"])
            receiver.secrets[f"/hook/{index}"] = sentry_app.client_secret
            ids.append(sentry_app.id)
        return ids


def change(app, title: str = "Checkout fails") -> list[str]:
    """Commit an issue change the apps subscribe to; return the deliveries' job ids."""
    with app.app_context():
        organization_id = db.session.scalar(select(Organization.id).where(Organization.slug == "acme"))
        job_ids = notify_resource_change(organization_id, "issue.resolved", {"issue": {"id": "7", "title": title}})
        db.session.commit()
        return job_ids


def respond_all(receiver, delay: float = 0.0) -> None:
    for index in range(APPS):
        receiver.respond(path=f"/hook/{index}", delay=delay)


def paths(receiver) -> list[str]:
    return sorted(r.path for r in receiver.received)


def run_runner(app, job_ids: list[str], app_ids: list[int]) -> int:
    with app.app_context():
        return FanOutRunner(app.extensions["redis"], "test-worker").run(job_ids, app_ids)


def test_a_fan_out_reaches_every_app_once_through_one_rq_job(app, apps, receiver):
    respond_all(receiver)
    job_ids = change(app)
    connection = app.extensions["redis"]
    assert ScheduledJobRegistry(keys.WEBHOOK_QUEUE, connection=connection).count == APPS  # held for the runner

    worker = make_worker(app, [keys.WEBHOOK_QUEUE])
    worker.work(burst=True)

    assert paths(receiver) == sorted(f"/hook/{index}" for index in range(APPS))
    assert all(r.sentry_signature_ok and r.standard_webhooks_ok for r in receiver.received)
    assert {r.json["data"]["issue"]["title"] for r in receiver.received} == {"Checkout fails"}
    assert len({r.headers["Webhook-Id"] for r in receiver.received}) == APPS
    assert rq_jobs_run(app) == 1  # the runner; it ran the six deliveries itself
    finished = FinishedJobRegistry(keys.WEBHOOK_QUEUE, connection=connection).get_job_ids()
    assert set(job_ids) <= set(finished)  # each delivery is a finished RQ job with its result, as on its own
    deliveries = [Job.fetch(job_id, connection=connection) for job_id in job_ids]
    assert {job.latest_result().return_value for job in deliveries} == {"success"}
    # ... queued when its runner took it, as RQ's scheduler would have queued it (rq-dashboard shows the time)
    assert all(job.created_at <= job.enqueued_at <= job.started_at <= job.ended_at for job in deliveries)
    # ``rq info``: the worker counts the runner and its six deliveries, and is idle once they are done
    assert connection.hmget(worker.key, "successful_job_count", "failed_job_count", "state") == [b"7", None, b"idle"]
    for app_id in apps:  # logged like any delivery, and every app's slot given back
        assert [entry["response_code"] for entry in log_entries(app, app_id)] == [200]
        registry = RateLimitRegistry(keys.app_rate_limit(app_id), connection)
        assert registry.get_allowed_job_count() == 0 and registry.get_rate_limited_job_count() == 0
    assert StartedJobRegistry(keys.WEBHOOK_QUEUE, connection=connection).get_job_ids(cleanup=False) == []


def test_a_fan_out_to_few_apps_is_one_job_each(app, apps, receiver):
    respond_all(receiver)
    with app.app_context():
        for app_id in apps[fanout.FANOUT_MIN_APPS - 1:]:  # subscribed to errors only: not told of issues
            db.session.get(SentryApp, app_id).resources = "error"
        db.session.commit()
    change(app)
    assert ScheduledJobRegistry(keys.WEBHOOK_QUEUE, connection=app.extensions["redis"]).count == 0

    make_worker(app, [keys.WEBHOOK_QUEUE]).work(burst=True)
    assert len(receiver.received) == fanout.FANOUT_MIN_APPS - 1 == rq_jobs_run(app)


def test_deliveries_no_runner_took_are_queued_when_due(app, apps, receiver):
    from webapp.dispatch.housekeeping import ShortLockScheduler

    respond_all(receiver)
    change(app)
    connection = app.extensions["redis"]
    Queue(keys.WEBHOOK_QUEUE, connection=connection).empty()  # the runner is lost (say, never taken)
    scheduler = ShortLockScheduler(keys.ALL_QUEUES, connection=connection, name="test.scheduler")
    scheduler.acquire_locks()

    scheduler.enqueue_scheduled_jobs()
    assert Queue(keys.WEBHOOK_QUEUE, connection=connection).count == 0  # still held: not due yet
    time.sleep(fanout.FANOUT_HOLD_SECONDS + 1)  # RQ's schedule has whole seconds
    scheduler.enqueue_scheduled_jobs()
    make_worker(app, [keys.WEBHOOK_QUEUE]).work(burst=True)

    assert paths(receiver) == sorted(f"/hook/{index}" for index in range(APPS))


def test_a_delivery_a_runner_took_is_not_queued_again_when_due(app, apps, receiver):
    from webapp.dispatch.housekeeping import ShortLockScheduler

    respond_all(receiver)
    job_ids = change(app)
    connection = app.extensions["redis"]
    with app.app_context():
        runner = FanOutRunner(connection, "dead-worker")
        position, taken = runner.claim(job_ids)  # a runner takes the first, then its worker dies
    assert (position, taken.id, taken.get_status()) == (0, job_ids[0], "started")
    # Its claim lasts as long as RQ's heartbeat for a job of its own (its time limit + 15 s), no longer: the
    # runner stops a delivery at that limit, and one whose worker died is found abandoned that soon.
    [(entry, expiry)] = connection.zrange(StartedJobRegistry(keys.WEBHOOK_QUEUE, connection=connection).key, 0, -1,
                                          withscores=True)
    assert entry.decode().startswith(job_ids[0] + ":")
    assert abs(expiry - (time.time() + taken.timeout + 15)) < 3
    registry = ScheduledJobRegistry(keys.WEBHOOK_QUEUE, connection=connection)
    connection.zadd(registry.key, {job_id: 0 for job_id in job_ids[1:]})  # the others are due now
    scheduler = ShortLockScheduler(keys.ALL_QUEUES, connection=connection, name="test.scheduler")
    scheduler.acquire_locks()
    scheduler.enqueue_scheduled_jobs()

    queued = Queue(keys.WEBHOOK_QUEUE, connection=connection).get_job_ids()
    assert job_ids[0] not in queued and set(job_ids[1:]) <= set(queued)
    # RQ's clean-up finds the taken one abandoned once its time is up, and re-runs it (its crash retry).
    StartedJobRegistry(keys.WEBHOOK_QUEUE, connection=connection).cleanup(timestamp=time.time() + 3600)
    move_scheduled_jobs(connection)
    make_worker(app, [keys.WEBHOOK_QUEUE]).work(burst=True)
    assert paths(receiver) == sorted(f"/hook/{index}" for index in range(APPS))  # each app once


def test_an_app_at_its_cap_gets_its_fan_out_delivery_in_line(app, apps, receiver):
    app.config["WEBHOOK_APP_CONCURRENCY"] = 1
    respond_all(receiver)
    [earlier] = send(app, apps[0])  # app 0's slot is taken by a delivery queued before the change
    job_ids = change(app)
    connection = app.extensions["redis"]

    ran = run_runner(app, job_ids, apps)

    assert ran == APPS - 1  # app 0 is at its cap: its delivery waits behind the earlier one
    assert Job.fetch(job_ids[0], connection=connection).get_status() == "rate_limited"
    assert RateLimitRegistry(keys.app_rate_limit(apps[0]), connection).get_rate_limited_job_ids() == [job_ids[0]]
    assert receiver.at("/hook/0") == []
    make_worker(app, [keys.WEBHOOK_QUEUE]).work(burst=True)
    assert [r.json["data"]["issue"]["title"] for r in receiver.at("/hook/0")] == ["issue 0", "Checkout fails"]
    assert receiver.at("/hook/0")[0].headers["Webhook-Id"] == earlier


def handed_on(connection, queued_before: set[str]) -> list[list[str]]:
    """The deliveries each runner job queued since carries (a runner hands what it has not taken to new runners)."""
    new = [job_id for job_id in Queue(keys.WEBHOOK_QUEUE, connection=connection).get_job_ids() if job_id not in queued_before]
    jobs = [Job.fetch(job_id, connection=connection) for job_id in new]
    return [job.args[0] for job in jobs if job.func_name == fanout.RUNNER_JOB]


def queued(connection) -> set[str]:
    return set(Queue(keys.WEBHOOK_QUEUE, connection=connection).get_job_ids())


def test_a_slow_receiver_makes_the_runner_hand_the_rest_to_new_runners(app, apps, receiver, monkeypatch):
    monkeypatch.setattr(fanout, "RELEASE_AFTER_SECONDS", 0.05)
    respond_all(receiver, delay=0.3)
    job_ids = change(app)
    connection = app.extensions["redis"]
    before = queued(connection)

    assert run_runner(app, job_ids, apps) == 1  # it took one; that one was slow, so it let the rest go
    receiver.in_flight.wait_idle()
    chunks = handed_on(connection, before)
    assert sorted(sum(chunks, [])) == sorted(job_ids[1:])  # at once, to runners of a few each, for free slots
    assert all(len(chunk) <= fanout.RELEASE_CHUNK for chunk in chunks)
    make_worker(app, [keys.WEBHOOK_QUEUE]).work(burst=True)
    assert paths(receiver) == sorted(f"/hook/{index}" for index in range(APPS))
    assert ScheduledJobRegistry(keys.WEBHOOK_QUEUE, connection=connection).count == 0


def test_an_app_whose_last_attempt_timed_out_gets_a_job_of_its_own(app, apps, receiver):
    import json

    respond_all(receiver)
    connection = app.extensions["redis"]
    connection.hset(keys.LAST_DELIVERY, str(apps[2]), json.dumps({"date": "", "response_code": 0}))
    job_ids = change(app)

    held = ScheduledJobRegistry(keys.WEBHOOK_QUEUE, connection=connection).get_job_ids()
    [own] = [job_id for job_id in job_ids if job_id not in held]
    assert len(held) == APPS - 1 and Job.fetch(own, connection=connection).args[0] == apps[2]
    assert own in Queue(keys.WEBHOOK_QUEUE, connection=connection).get_job_ids()  # queued at once
    make_worker(app, [keys.WEBHOOK_QUEUE]).work(burst=True)
    assert paths(receiver) == sorted(f"/hook/{index}" for index in range(APPS))


def fail_delivery(monkeypatch, nth: int) -> list[int]:
    """Make the ``nth`` delivery raise (a fault, say a dropped database connection); return the app ids tried."""
    from webapp.dispatch import tasks

    real = tasks.deliver_webhook
    calls = []

    def failing(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == nth:
            raise RuntimeError("connection dropped")
        return real(*args, **kwargs)

    monkeypatch.setattr(tasks, "deliver_webhook", failing)
    return calls


def test_a_failed_delivery_ends_the_runner_and_the_rest_go_to_new_runners(app, apps, receiver, monkeypatch):
    respond_all(receiver)
    job_ids = change(app)
    connection = app.extensions["redis"]
    fail_delivery(monkeypatch, 1)  # the first delivery hits a fault (say, its database connection dropped)
    before = queued(connection)
    assert run_runner(app, job_ids, apps) == 0  # it stopped at the failure ...
    assert sorted(sum(handed_on(connection, before), [])) == sorted(job_ids[1:])  # ... and handed the rest on
    assert Job.fetch(job_ids[0], connection=connection).get_status() == "started"  # left to RQ's clean-up
    assert connection.hget("rq:worker:test-worker", "failed_job_count") == b"1"  # rq info counts it failed
    StartedJobRegistry(keys.WEBHOOK_QUEUE, connection=connection).cleanup(timestamp=time.time() + 1)
    assert Job.fetch(job_ids[0], connection=connection).get_status() == "scheduled"  # its crash retry
    move_scheduled_jobs(connection)
    make_worker(app, [keys.WEBHOOK_QUEUE]).work(burst=True)
    assert paths(receiver) == sorted(f"/hook/{index}" for index in range(APPS))  # each app once


def test_a_fault_mid_run_leaves_what_the_runner_delivered_recorded_and_finished(app, apps, receiver, monkeypatch):
    """A delivery that raises mid-run ends the runner; the ones it delivered before are logged and finished."""
    respond_all(receiver)
    job_ids = change(app)
    connection = app.extensions["redis"]
    calls = fail_delivery(monkeypatch, 3)
    assert run_runner(app, job_ids, apps) == 2  # two delivered, then the fault

    delivered = calls[:2]
    for app_id in delivered:  # ... and are there: logged, as any delivery
        assert [entry["response_code"] for entry in log_entries(app, app_id)] == [200]
    finished = set(FinishedJobRegistry(keys.WEBHOOK_QUEUE, connection=connection).get_job_ids())
    assert {job_id for job_id in job_ids if Job.fetch(job_id, connection=connection).args[0] in delivered} <= finished
    assert Job.fetch(job_ids[2], connection=connection).get_status() == "started"  # the failed one: RQ's clean-up


def test_a_runner_leaves_a_crash_retry_to_its_time(app, apps, receiver):
    respond_all(receiver)
    job_ids = change(app)
    connection = app.extensions["redis"]
    registry = ScheduledJobRegistry(keys.WEBHOOK_QUEUE, connection=connection)
    connection.zadd(registry.key, {job_ids[0]: time.time() + 10})  # as RQ schedules a delivery's crash retry

    with app.app_context():
        position, taken = FanOutRunner(connection, "test-worker").claim(job_ids[:1])
    assert taken is None and position == 0
    assert job_ids[0] in registry.get_job_ids()  # still waiting for its time
    assert Job.fetch(job_ids[0], connection=connection).get_status() == "scheduled"


def test_releasing_queues_only_what_is_still_held_and_through_the_app_cap(app, apps, receiver):
    from webapp.dispatch.fanout import release_held

    app.config["WEBHOOK_APP_CONCURRENCY"] = 1
    send(app, apps[1])  # app 1's one slot is taken
    job_ids = change(app)
    connection = app.extensions["redis"]
    with app.app_context():
        FanOutRunner(connection, "test-worker").claim(job_ids[:1])  # a runner took app 0's

    released = release_held(connection, keys.WEBHOOK_QUEUE, job_ids)

    assert released == job_ids[1:]  # not the one a runner took
    assert release_held(connection, keys.WEBHOOK_QUEUE, job_ids) == []  # nothing is taken twice
    assert Job.fetch(job_ids[1], connection=connection).get_status() == "rate_limited"  # behind app 1's first
    assert RateLimitRegistry(keys.app_rate_limit(apps[1]), connection).get_rate_limited_job_ids() == [job_ids[1]]
    assert {Job.fetch(job_id, connection=connection).get_status() for job_id in job_ids[2:]} == {"queued"}
    assert ScheduledJobRegistry(keys.WEBHOOK_QUEUE, connection=connection).count == 0


def test_a_runner_loads_its_share_of_apps_then_the_rest_of_its_group_in_one_more_query(app, apps, receiver,
                                                                                        monkeypatch):
    """Its own share at its start; the first delivery of another share brings every other app of the group; none
    of its deliveries then loads its app on its own."""
    import re

    from sqlalchemy import event

    monkeypatch.setattr(fanout, "FANOUT_PER_RUNNER", 2)
    respond_all(receiver)
    job_ids = change(app)
    with app.app_context():
        engine = db.engine
    loads: list[str] = []

    def count(_conn, _cursor, statement, *args):
        if re.search(r"FROM sentry_app\s", statement):
            loads.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert run_runner(app, job_ids, apps) == APPS  # a lone runner takes every delivery of the group
    finally:
        event.remove(engine, "before_cursor_execute", count)

    assert paths(receiver) == sorted(f"/hook/{index}" for index in range(APPS))
    assert len(loads) == 2, loads  # its share (2 apps), then the other 4 together
