"""An app's backlog is delivered in batches: each message once, within the app's cap; a failure stops the
batch and the rest still arrive; deliveries claimed by a worker that dies are re-run by RQ's clean-up."""

from __future__ import annotations

import time

from rq import Queue
from rq.job import Job
from rq.rate_limit import RateLimitRegistry
from rq.registry import FinishedJobRegistry, StartedJobRegistry

from tests.conftest import move_scheduled_jobs
from tests.lifecycle import log_entries, pager, rq_jobs_run, send  # noqa: F401 - pager is a fixture
from webapp.core import keys
from webapp.dispatch.batches import Batch
from webapp.dispatch.queues import make_worker


def test_a_backlog_arrives_each_message_once_in_few_rq_jobs(app, pager, receiver):
    app.config["WEBHOOK_APP_CONCURRENCY"] = 1
    receiver.respond()
    ids = send(app, pager, 30)

    worker = make_worker(app, [keys.WEBHOOK_QUEUE])
    worker.work(burst=True)

    assert sorted(r.headers["Webhook-Id"] for r in receiver.received) == sorted(ids)
    assert all(r.sentry_signature_ok and r.standard_webhooks_ok for r in receiver.received)
    # RQ ran one job; with the app's one place held by it, that job's batch ran the 29 waiting after it (a batch
    # goes on for at least 4.2 s, BATCH_SECONDS x 60 %, far longer than 30 deliveries to a local receiver take).
    assert rq_jobs_run(app) == 1
    finished = FinishedJobRegistry(keys.WEBHOOK_QUEUE, connection=app.extensions["redis"])
    assert len(finished.get_job_ids()) == 30  # every delivery is a finished RQ job with its result
    connection = app.extensions["redis"]
    for job_id in finished.get_job_ids():  # ... kept for its result_ttl (JOB_RESULT_TTL), as RQ keeps any job
        assert Job.fetch(job_id, connection=connection).latest_result().return_value == "success"
        assert 0 < connection.ttl(Job.key_for(job_id)) <= app.config["JOB_RESULT_TTL"]
    assert len(log_entries(app, pager)) == 30
    registry = RateLimitRegistry(keys.app_rate_limit(pager), app.extensions["redis"])
    assert registry.get_allowed_job_count() == 0 and registry.get_rate_limited_job_count() == 0


def test_a_failure_stops_the_batch_and_is_retried_while_the_rest_arrive(app, pager, receiver):
    app.config["WEBHOOK_APP_CONCURRENCY"] = 1
    ids = send(app, pager, 12)
    answers = iter([200] * 4 + [500] + [200] * 20)

    def handler(request):
        from werkzeug import Response

        receiver.received.append(receiver._check(request))
        return Response('{"ok": true}', status=next(answers), content_type="application/json")

    receiver.server.expect_request("/hook", method="POST").respond_with_handler(handler)
    make_worker(app, [keys.WEBHOOK_QUEUE]).work(burst=True)

    first_round = [r.headers["Webhook-Id"] for r in receiver.received]
    # The fifth failed; the batch stopped there and the next job carried on with the rest.
    assert sorted(first_round) == sorted(ids)
    assert move_scheduled_jobs(app.extensions["redis"])  # the failed one's retry
    make_worker(app, [keys.RETRY_QUEUE]).work(burst=True)
    assert [r.headers["Webhook-Id"] for r in receiver.received][12:] == [first_round[4]]  # under its own id
    assert [entry["response_code"] for entry in log_entries(app, pager)].count(500) == 1


def test_deliveries_claimed_by_a_worker_that_died_are_re_run(app, pager, receiver):
    app.config["WEBHOOK_APP_CONCURRENCY"] = 1
    receiver.respond()
    ids = send(app, pager, 4)
    connection = app.extensions["redis"]
    leader = Job.fetch(Queue(keys.WEBHOOK_QUEUE, connection=connection).get_job_ids()[0], connection=connection)

    # A worker claims the three waiting behind the first job, then dies before sending them.
    claimed = Batch(leader, "dead-worker", time.monotonic(), webhook_timeout=1.0).claim()
    assert [job.get_status() for job, _ in claimed] == ["started"] * 3
    started = StartedJobRegistry(keys.WEBHOOK_QUEUE, connection=connection)
    assert sorted(started.get_job_ids(cleanup=False)) == sorted(job.id for job, _ in claimed)

    # RQ's clean-up (the housekeeper runs it every few seconds) finds them abandoned once their time is up ...
    started.cleanup(timestamp=time.time() + 3600)
    assert [job.get_status() for job, _ in claimed] == ["scheduled"] * 3  # their crash retry
    move_scheduled_jobs(connection)
    make_worker(app, [keys.WEBHOOK_QUEUE]).work(burst=True)

    # ... and every message arrives, each under the webhook-id it was sent with.
    assert sorted(r.headers["Webhook-Id"] for r in receiver.received) == sorted(ids)
    assert len(receiver.received) == 4


def test_claimed_deliveries_given_back_keep_their_places(app, pager, receiver):
    app.config["WEBHOOK_APP_CONCURRENCY"] = 1
    send(app, pager, 6)
    connection = app.extensions["redis"]
    registry = RateLimitRegistry(keys.app_rate_limit(pager), connection)
    waiting = registry.get_rate_limited_job_ids()
    leader = Job.fetch(Queue(keys.WEBHOOK_QUEUE, connection=connection).get_job_ids()[0], connection=connection)

    batch = Batch(leader, "worker", time.monotonic(), webhook_timeout=1.0)
    batch.chunk = len(waiting)  # a batch's first chunk has a random size: take them all
    claimed = batch.claim()
    assert [job.id for job, _ in claimed] == waiting  # in the waiting set's order
    assert registry.get_rate_limited_job_count() == 0
    batch.give_back(claimed)

    assert registry.get_rate_limited_job_ids() == waiting
    assert {Job.fetch(job_id, connection=connection).get_status() for job_id in waiting} == {"rate_limited"}
    assert StartedJobRegistry(keys.WEBHOOK_QUEUE, connection=connection).get_job_ids(cleanup=False) == []


def test_a_disabled_app_mid_backlog_keeps_the_rest_as_missed(app, pager, receiver):
    from webapp.apps.internal_apps import disable_app
    from webapp.core.extensions import db
    from webapp.dispatch.delivery import missed_delivery_count
    from webapp.models import SentryApp

    app.config["WEBHOOK_APP_CONCURRENCY"] = 1
    receiver.respond()
    send(app, pager, 3)
    with app.app_context():
        disable_app(db.session.get(SentryApp, pager), actor_id=None, reason="test")
    send(app, pager, 3)
    make_worker(app, [keys.WEBHOOK_QUEUE]).work(burst=True)

    assert receiver.received == []
    with app.app_context():
        assert missed_delivery_count(pager) == 6  # kept for a replay on re-enable, none sent, none lost


def test_an_app_disabled_during_a_batch_gets_nothing_more_within_the_refresh_period(app, pager, receiver):
    """A batch keeps the app it loaded, but reads it afresh every REFRESH_SECONDS: a change reaches it then."""
    from werkzeug import Response

    from webapp.apps.internal_apps import disable_app
    from webapp.core.extensions import db
    from webapp.dispatch.batches import REFRESH_SECONDS
    from webapp.dispatch.delivery import missed_delivery_count
    from webapp.models import SentryApp

    app.config["WEBHOOK_APP_CONCURRENCY"] = 1
    send(app, pager, 40)
    arrivals: list[float] = []
    disabled_at: list[float] = []

    def handler(request):
        receiver.received.append(receiver._check(request))
        arrivals.append(time.monotonic())
        if len(arrivals) == 3:  # the owner disables the app while the batch is under way
            with app.app_context():
                disable_app(db.session.get(SentryApp, pager), actor_id=None, reason="test")
            disabled_at.append(time.monotonic())
        time.sleep(0.05)
        return Response('{"ok": true}', content_type="application/json")

    receiver.server.expect_request("/hook", method="POST").respond_with_handler(handler)
    make_worker(app, [keys.WEBHOOK_QUEUE]).work(burst=True)

    assert 3 <= len(arrivals) < 40
    assert arrivals[-1] - disabled_at[0] <= REFRESH_SECONDS + 1.0  # the one after the refresh, on a busy machine
    with app.app_context():
        assert missed_delivery_count(pager) == 40 - len(arrivals)  # the rest are kept for a replay, none lost


def test_a_batch_finishes_its_jobs_with_the_records_rq_itself_writes(app, pager, receiver):
    """The lean finish (one script for a chunk) leaves each job as RQ's own success path leaves the leader."""
    app.config["WEBHOOK_APP_CONCURRENCY"] = 1
    receiver.respond()
    send(app, pager, 6)
    worker = make_worker(app, [keys.WEBHOOK_QUEUE])
    worker.work(burst=True)

    connection = app.extensions["redis"]
    finished = FinishedJobRegistry(keys.WEBHOOK_QUEUE, connection=connection)
    jobs = [Job.fetch(job_id, connection=connection) for job_id in finished.get_job_ids()]
    assert len(jobs) == 6
    by_rq = [job for job in jobs if not job.latest_result().execution_id.startswith("batch-")]
    in_batch = [job for job in jobs if job.latest_result().execution_id.startswith("batch-")]
    assert len(by_rq) == 1 and len(in_batch) == 5  # the leader ran as RQ's job, the rest in its batch

    def record(job):
        result = job.latest_result()
        fields = {field.decode() for field in connection.xrange(f"rq:results:{job.id}")[-1][1]}
        kept = app.config["JOB_RESULT_TTL"]
        expiring = [0 < connection.ttl(key) <= kept for key in (job.key, f"rq:results:{job.id}")]
        return (job.get_status(), bool(job.worker_name), job.created_at <= job.enqueued_at <= job.started_at,
                job.started_at <= job.ended_at, result.type, result.return_value,
                result.worker_name == job.worker_name, sorted(fields), expiring,
                finished.get_expiration_time(job) is not None)

    expected = record(by_rq[0])
    assert expected[0] == "finished" and expected[2] and expected[5] == "success"
    assert [record(job) for job in in_batch] == [expected] * 5
    assert StartedJobRegistry(keys.WEBHOOK_QUEUE, connection=connection).get_job_ids() == []
    # What ``rq info`` shows of the worker: every job it ran counted, its batch's too, and idle once they are done.
    assert connection.hmget(worker.key, "successful_job_count", "failed_job_count", "state") == [b"6", None, b"idle"]


def test_a_finish_after_redis_lost_its_scripts_still_finishes_the_jobs(app, pager, receiver):
    """Redis restarted between a chunk's runs and its finish: the scripts are loaded again, nothing is left
    started (where RQ's clean-up would run them a second time)."""
    app.config["WEBHOOK_APP_CONCURRENCY"] = 1
    receiver.respond()
    send(app, pager, 4)
    connection = app.extensions["redis"]
    leader = Job.fetch(Queue(keys.WEBHOOK_QUEUE, connection=connection).get_job_ids()[0], connection=connection)
    batch = Batch(leader, "worker", time.monotonic(), webhook_timeout=1.0)
    batch.chunk = 3
    claimed = [job for job, _ in batch.claim()]
    with app.app_context():
        for job in claimed:
            batch.runs.perform(job)
    connection.script_flush()  # what a restarted Redis without persistence of scripts looks like
    batch.runs.finish(claimed)

    assert [job.get_status() for job in claimed] == ["finished"] * 3
    assert [job.latest_result().return_value for job in claimed] == ["success"] * 3
    assert StartedJobRegistry(keys.WEBHOOK_QUEUE, connection=connection).get_job_ids(cleanup=False) == []
    assert len(receiver.received) == 3


def test_a_leader_with_a_backlog_and_its_batch_run_on_the_transfer_hub(app, pager, receiver, monkeypatch):
    """With deliveries of its app waiting, the leader's own delivery and the batch after it are sent from the
    process's hub; the slot only waits (its thread runs RQ's bookkeeping around them, and no delivery's Python
    contends with the hub for the GIL). A job alone sends from its slot."""
    import threading

    from webapp.dispatch import webhooks

    app.config["WEBHOOK_APP_CONCURRENCY"] = 1
    receiver.respond()
    threads = []
    original = webhooks.post_webhook

    def noting_thread(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(webhooks, "post_webhook", noting_thread)
    asked = []
    original_has_backlog = Batch.has_backlog
    monkeypatch.setattr(Batch, "has_backlog", lambda batch: asked.append(True) or original_has_backlog(batch))
    send(app, pager, 10)
    make_worker(app, [keys.WEBHOOK_QUEUE]).work(burst=True)
    assert threads == ["transfer-hub"] * 10
    assert asked == []  # the gate's answer said 9 waited behind the first: no round trip of its own to know
    asked.clear()
    assert len(log_entries(app, pager)) == 10
    assert FinishedJobRegistry(keys.WEBHOOK_QUEUE, connection=app.extensions["redis"]).count == 10

    threads.clear()  # a job with none waiting behind it sends from its slot, beside the other slots ...
    from webapp.dispatch.hub import TransferHub

    handed = []
    original_run = TransferHub.run
    monkeypatch.setattr(TransferHub, "run", lambda hub, *args: handed.append(args) or original_run(hub, *args))
    send(app, pager, 1)
    make_worker(app, [keys.WEBHOOK_QUEUE]).work(burst=True)
    assert threads == [threading.current_thread().name]
    assert len(log_entries(app, pager)) == 11
    assert handed == []  # ... and, with none waiting after it either, is not handed to the hub for an empty batch
    # The organisations' gate, letting it in, said none waited behind it: only the check after its delivery asked.
    assert asked == [True]

    threads.clear()  # deliveries of its app that came while it was sending make a batch after it, on the hub
    later = []

    def queueing_more(*args, **kwargs):
        if not later:
            later.extend(send(app, pager, 3))
        return noting_thread(*args, **kwargs)

    monkeypatch.setattr(webhooks, "post_webhook", queueing_more)
    send(app, pager, 1)
    make_worker(app, [keys.WEBHOOK_QUEUE]).work(burst=True)
    assert threads == [threading.current_thread().name] + ["transfer-hub"] * 3
    assert len(handed) == 1 and len(log_entries(app, pager)) == 15
    monkeypatch.setattr(webhooks, "post_webhook", noting_thread)

    app.config["WEBHOOK_BATCH_HUB"] = False  # each batch on its own slot's thread, as before the hub
    threads.clear()
    send(app, pager, 10)
    make_worker(app, [keys.WEBHOOK_QUEUE]).work(burst=True)
    assert threads == [threading.current_thread().name] * 10
    assert len(log_entries(app, pager)) == 25


def test_a_chunk_cut_short_by_an_error_still_records_and_finishes_what_it_delivered(app, pager, receiver,
                                                                                     monkeypatch):
    """A batch's successes are held until its chunk ends: an error mid-chunk must not lose their records."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from webapp.dispatch import batches

    app.config["WEBHOOK_APP_CONCURRENCY"] = 1
    monkeypatch.setattr(batches, "CLAIM_CHUNK", 16)
    monkeypatch.setattr(batches.random, "randint", lambda low, high: high)  # one chunk of 16
    receiver.respond()
    calls = {"n": 0}
    original = batches.LoadedObjects.refresh_if_due

    def failing_on_the_fourth(self):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RedisConnectionError("gone mid-chunk")
        return original(self)

    monkeypatch.setattr(batches.LoadedObjects, "refresh_if_due", failing_on_the_fourth)
    send(app, pager, 10)
    worker = make_worker(app, [keys.WEBHOOK_QUEUE])
    worker.work(burst=True, max_jobs=1)

    assert len(receiver.received) == 4  # the leader's own, then three of its batch
    assert len(log_entries(app, pager)) == 4  # the three held records were written all the same
    finished = FinishedJobRegistry(keys.WEBHOOK_QUEUE, connection=app.extensions["redis"])
    assert len(finished.get_job_ids()) == 4
