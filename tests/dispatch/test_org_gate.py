"""The organisations' gate (dispatch/orgs.py) on a real Redis: parked, promoted, fair, nothing lost."""

import json
import time

import pytest
from rq import Queue
from rq.job import Job, JobStatus
from sqlalchemy import select

from webapp.accounts.people import get_or_create_organization
from webapp.apps.internal_apps import register_internal_app
from webapp.core import keys
from webapp.core.extensions import db
from webapp.dispatch.delivery import enqueue_delivery_jobs
from webapp.dispatch.housekeeping import requeue_orphaned_jobs
from webapp.dispatch.orgs import RUNNER_FUNC
from webapp.dispatch.queues import org_gate
from webapp.dispatch.signing import new_message_id
from webapp.models import Organization


@pytest.fixture
def settings(settings):
    return {**settings, "WEBHOOK_ORG_CONCURRENCY": "2"}


@pytest.fixture
def orgs(app, receiver):
    """Apps x1, x2, y1 of organisation "acme" and v1 of "victim", all on the receiver; return {name: id}."""
    receiver.respond(200)
    with app.app_context():
        acme, victim = get_or_create_organization("acme"), get_or_create_organization("victim")
        ids = {name: register_internal_app(org, name, receiver.url("/hook"), ["issue"]).id
               for org, name in ((acme, "x1"), (acme, "x2"), (acme, "y1"), (victim, "v1"))}
        db.session.commit()
        return ids


def queue_one(app, app_id: int) -> str:
    with app.app_context():
        [job_id] = enqueue_delivery_jobs([(app_id, "issue.created", {"issue": {"id": "1"}}, None, new_message_id())])
        return job_id


def take(app) -> Job:
    """Pop the next job of the first-attempts queue into its intermediate list, as an RQ worker does."""
    redis = app.extensions["redis"]
    queue = Queue(keys.WEBHOOK_QUEUE, connection=redis)
    job_id = redis.lmove(queue.key, queue.intermediate_queue_key, "LEFT", "RIGHT")
    assert job_id is not None, "the queue is empty"
    return Job.fetch(job_id.decode(), connection=redis)


def enter(app, job: Job) -> tuple[bool, object]:
    gate = org_gate(app)
    admission = gate.admission(job)
    return gate.enter(job, Queue(keys.WEBHOOK_QUEUE, connection=app.extensions["redis"]), admission)[0], admission


def organization_id(app, slug: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Organization.id).where(Organization.slug == slug))


def test_an_organisation_at_its_cap_parks_the_next_delivery_and_gives_it_the_place_that_frees(app, orgs):
    redis = app.extensions["redis"]
    _, _, third = (queue_one(app, orgs[name]) for name in ("x1", "x2", "y1"))
    ran_first, first_admission = enter(app, take(app))
    ran_second, _ = enter(app, take(app))
    parked_job = take(app)
    ran_third, _ = enter(app, parked_job)
    assert (ran_first, ran_second, ran_third) == (True, True, False)
    # Parked: out of the queue and its intermediate list, still a queued job, in the organisation's parked set.
    acme = organization_id(app, "acme")
    assert redis.zrange(keys.org_parked(acme), 0, -1) == [f"{orgs['y1']}/{third}".encode()]
    assert redis.lpos(Queue(keys.WEBHOOK_QUEUE, connection=redis).intermediate_queue_key, third) is None
    assert parked_job.get_status(refresh=True) == JobStatus.QUEUED
    assert requeue_orphaned_jobs(redis) == []  # the orphan sweep leaves a parked job where it is
    # The first attempt ends: the parked one is queued at the front, holding the place.
    assert org_gate(app).leave(first_admission) == 1
    assert redis.lrange(Queue(keys.WEBHOOK_QUEUE, connection=redis).key, 0, 0) == [third.encode()]
    assert enter(app, take(app))[0] is True


def test_the_next_place_goes_to_the_app_with_fewest_attempts_in_flight(app, orgs):
    redis = app.extensions["redis"]
    for name in ("x1", "x2", "x1", "x1", "y1"):
        queue_one(app, orgs[name])
    _, x1_admission = enter(app, take(app))  # x1 in flight
    _, x2_admission = enter(app, take(app))  # x2 in flight: the organisation is at its cap of 2
    assert [enter(app, take(app))[0] for _ in range(3)] == [False, False, False]  # x1, x1, then y1 parked
    org_gate(app).leave(x2_admission)  # x2 ends: x1 has one in flight, y1 none
    promoted = Job.fetch(redis.lindex(Queue(keys.WEBHOOK_QUEUE, connection=redis).key, 0).decode(), connection=redis)
    assert promoted.rate_limit_key == keys.app_rate_limit(orgs["y1"])


def test_another_organisations_delivery_goes_through_while_one_is_parked(app, orgs):
    for name in ("x1", "x2", "y1"):
        queue_one(app, orgs[name])
    queue_one(app, orgs["v1"])
    assert [enter(app, take(app))[0] for _ in range(4)] == [True, True, False, True]


def test_an_organisation_alone_may_use_free_slots_beyond_its_cap_but_leaves_some_free(app, orgs):
    """Work-conserving: with 6 live slots and a cap of 2, one organisation takes up to 5 (one kept free)."""
    org_gate(app).register_slots("worker-a", 6, ttl=30)
    for index in range(7):
        queue_one(app, orgs["x1" if index % 2 else "x2"])
    app.config["WEBHOOK_APP_CONCURRENCY"] = 10
    assert [enter(app, take(app))[0] for _ in range(4)] == [True, True, True, True]  # x1 and x2: cap 4 each
    assert [enter(app, take(app))[0] for _ in range(3)] == [True, False, False]


def test_a_parked_delivery_is_delivered_once_its_place_frees_nothing_lost(app, orgs, run_worker, receiver):
    redis = app.extensions["redis"]
    acme = organization_id(app, "acme")
    # Two attempts of acme in flight elsewhere (tokens of another worker, expiring in a minute).
    redis.zadd(keys.org_inflight(acme), {"999/elsewhere-1": time.time() + 60, "999/elsewhere-2": time.time() + 60})
    job_ids = [queue_one(app, orgs[name]) for name in ("x1", "x2", "y1")]
    run_worker()
    assert len(receiver.received) == 0  # all three parked: the queue is empty, nothing was dropped
    assert redis.zcard(keys.org_parked(acme)) == 3
    redis.zrem(keys.org_inflight(acme), "999/elsewhere-1", "999/elsewhere-2")  # the other worker died
    assert org_gate(app).promote_parked() == 2  # the housekeeper's second: as many as the cap
    run_worker()  # the first to end hands its place to the third
    assert redis.zcard(keys.org_parked(acme)) == 0
    assert sorted(r.headers["Webhook-Id"] for r in receiver.received) == sorted(
        Job.fetch(job_id, connection=redis).args[4] for job_id in job_ids)


def test_a_job_that_ends_gives_its_place_back_also_when_redis_forgot_the_gates_script(app, orgs, run_worker,
                                                                                      receiver, monkeypatch):
    """The place is given back in the round trip that records the job's success; a Redis restarted since the
    script was loaded answers NOSCRIPT there, and the place is given back by a call of its own."""
    from webapp.dispatch.queues import HooklineWorker

    redis = app.extensions["redis"]
    acme = organization_id(app, "acme")
    queue_one(app, orgs["x1"])
    run_worker()
    assert len(receiver.received) == 1 and redis.zcard(keys.org_inflight(acme)) == 0

    original = HooklineWorker.handle_job_success

    def after_a_restart(worker, *args, **kwargs):
        redis.script_flush()  # as a restarted Redis: the scripts loaded before are unknown
        return original(worker, *args, **kwargs)

    monkeypatch.setattr(HooklineWorker, "handle_job_success", after_a_restart)
    job_id = queue_one(app, orgs["x2"])
    run_worker()
    assert len(receiver.received) == 2
    assert redis.zcard(keys.org_inflight(acme)) == 0  # the place is free: not held until its token expires
    assert Job.fetch(job_id, connection=redis).get_status() == JobStatus.FINISHED


def test_a_delivery_whose_app_hung_since_it_was_let_in_goes_back_to_the_apps_line(app, orgs):
    redis = app.extensions["redis"]
    app.config["WEBHOOK_ORG_CONCURRENCY"] = 100
    job_ids = [queue_one(app, orgs["x1"]) for _ in range(3)]  # let in under the app's cap of 4
    redis.hset(keys.LAST_DELIVERY, str(orgs["x1"]), json.dumps({"date": "now", "response_code": 0}))
    verdicts = [enter(app, take(app))[0] for _ in range(3)]
    assert verdicts == [False, False, True]  # one attempt in flight for an app that times out
    waiting = redis.zrange(keys.app_rate_limit_waiting(orgs["x1"]), 0, -1)
    assert sorted(waiting) == sorted(job_id.encode() for job_id in job_ids[:2])
    assert Job.fetch(job_ids[0], connection=redis).get_status() == JobStatus.RATE_LIMITED


def test_the_runner_function_the_gate_knows_is_the_fan_outs():
    from webapp.dispatch.fanout import RUNNER_JOB

    assert RUNNER_FUNC == RUNNER_JOB


def test_the_app_rate_limit_keys_the_gate_reads_are_rqs_own(app):
    from rq.rate_limit import RateLimitRegistry

    registry = RateLimitRegistry(keys.app_rate_limit(7), app.extensions["redis"])
    assert (registry.allowed_key, registry.rate_limited_key, registry.config_key) == (
        keys.app_rate_limit_allowed(7), keys.app_rate_limit_waiting(7), keys.app_rate_limit_config(7))
