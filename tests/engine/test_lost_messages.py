"""Nothing lost when Redis forgets: a message's outbox row stays until it is delivered or given up, and what Redis
lost is queued again from it under the same webhook-id (dispatch/recovery.py)."""

from __future__ import annotations

import json
import signal
import threading
import time
from datetime import timedelta

from sqlalchemy import select, update

from tests.engine.test_worker_process import running_worker, stop, wait_for
from tests.lifecycle import pager  # noqa: F401 - a fixture
from webapp.core import keys
from webapp.core.extensions import db
from webapp.dispatch.fanout import notify_resource_change
from webapp.dispatch.recovery import drain_done, recover_lost
from webapp.models import Organization, OutboxJob, SentryApp, utcnow


def commit_change(app, title: str) -> str:
    """Commit an issue change for org acme, as a workflow change does; return its message's webhook-id."""
    with app.app_context():
        organization_id = db.session.scalar(select(Organization.id).where(Organization.slug == "acme"))
        notify_resource_change(organization_id, "issue.resolved", {"issue": {"id": "7", "title": title}})
        db.session.commit()
        return db.session.scalars(select(OutboxJob.message_id).order_by(OutboxJob.id.desc())).first()


def rows(app) -> list[tuple[str, bool]]:
    """The outbox rows as (webhook-id, queued)."""
    with app.app_context():
        found = [(row.message_id, row.queued_at is not None) for row in db.session.scalars(select(OutboxJob))]
        db.session.remove()
        return found


def age_rows(app, seconds: float) -> None:
    """Make every row's job look queued ``seconds`` ago (past recovery's LOST_AFTER)."""
    with app.app_context():
        db.session.execute(update(OutboxJob).values(queued_at=utcnow() - timedelta(seconds=seconds)))
        db.session.commit()


def test_a_message_redis_lost_goes_out_again_under_its_webhook_id_and_its_row_goes_once_delivered(
        app, pager, receiver, run_worker):
    receiver.respond()
    redis = app.extensions["redis"]
    message_id = commit_change(app, "Fails")
    assert rows(app) == [(message_id, True)]  # queued, and kept until delivered

    redis.flushdb()  # Redis forgets (a failover to a replica that missed it, a restart without persistence)
    with app.app_context():
        assert recover_lost(redis)["alive"] == 0
        assert rows(app) == [(message_id, True)]  # too recent to judge: left for a later pass
        age_rows(app, 60)
        assert recover_lost(redis) == {"done": 0, "alive": 0, "given_up": 0, "lost": 1}
        assert recover_lost(redis)["lost"] == 0  # the cursor went round: the next pass starts again
    run_worker()
    assert [r.headers["Webhook-Id"] for r in receiver.received] == [message_id]
    with app.app_context():
        age_rows(app, 60)
        assert recover_lost(redis) == {"done": 1, "alive": 0, "given_up": 0, "lost": 0}  # found done, not sent twice
    assert rows(app) == []
    run_worker()
    assert len(receiver.received) == 1


def test_rows_of_delivered_messages_are_deleted_in_batches_and_live_ones_are_left_alone(
        app, pager, receiver, run_worker):
    receiver.respond()
    redis = app.extensions["redis"]
    delivered = [commit_change(app, f"Fails {index}") for index in range(3)]
    run_worker()
    waiting = commit_change(app, "Not yet run")
    time.sleep(1.1)  # drain_done reads markers older than a second
    with app.app_context():
        assert drain_done(redis) == 3
        assert rows(app) == [(waiting, True)]
        age_rows(app, 60)
        assert recover_lost(redis) == {"done": 0, "alive": 1, "given_up": 0, "lost": 0}  # its job is queued
        assert drain_done(redis) == 0  # read on from its cursor: each marker once
    assert sorted(r.headers["Webhook-Id"] for r in receiver.received) == sorted(delivered)


def test_a_marker_older_than_its_row_is_an_earlier_send_and_leaves_the_row(app, pager, receiver, run_worker):
    """A replay sends a kept message again under its webhook-id: the marker of its first send does not end it."""
    receiver.respond()
    redis = app.extensions["redis"]
    message_id = commit_change(app, "Replayed")
    redis.zadd(keys.OUTBOX_DONE, {message_id: time.time() - 30})  # the first send, kept while the app was disabled
    time.sleep(1.1)
    with app.app_context():
        drain_done(redis)
        assert rows(app) == [(message_id, True)]
        redis.flushdb()
        redis.zadd(keys.OUTBOX_DONE, {message_id: time.time() - 30})
        age_rows(app, 60)
        assert recover_lost(redis)["lost"] == 1


def test_a_message_that_failed_for_good_is_given_up_and_one_retrying_is_alive(app, pager, receiver, run_worker):
    receiver.respond(status=500)
    redis = app.extensions["redis"]
    message_id = commit_change(app, "Retrying")
    run_worker()  # attempt 1 fails: attempt 2 is scheduled under its own job id, the first job has finished
    with app.app_context():
        age_rows(app, 60)
        assert recover_lost(redis) == {"done": 0, "alive": 1, "given_up": 0, "lost": 0}
        retry_id = f"{message_id}-attempt-2"
        assert redis.hget(f"rq:job:{retry_id}", "status") == b"scheduled"
        redis.hset(f"rq:job:{retry_id}", "status", "failed")  # as RQ leaves a job whose crash retries ran out
        redis.delete(keys.OUTBOX_RECOVER_CURSOR)  # the next pass starts from the first row again
        assert recover_lost(redis) == {"done": 0, "alive": 0, "given_up": 1, "lost": 0}
    assert rows(app) == []


def test_a_disabled_apps_kept_message_and_a_deleted_apps_message_are_done(app, pager, receiver, run_worker):
    redis = app.extensions["redis"]
    with app.app_context():
        db.session.get(SentryApp, pager).status = "disabled"
        db.session.commit()
    kept = commit_change(app, "Kept")
    run_worker()
    assert receiver.received == []
    assert set(redis.zrange(keys.OUTBOX_DONE, 0, -1)) == {kept.encode()}
    time.sleep(1.1)
    with app.app_context():
        assert drain_done(redis) == 1
    assert rows(app) == []


def test_a_worker_carries_on_through_a_redis_flush_and_every_committed_message_arrives_once_recovered(
        app, settings, pager, receiver, tmp_path):
    """FLUSHDB mid-stream, the worst case of a failover to a replica that missed writes: every committed message is
    delivered, none under a webhook-id of its own, and the worker carries on."""
    receiver.respond(delay=0.05)  # about 20 a second, one at a time: a backlog builds, and the flush loses it
    app.config["WEBHOOK_APP_CONCURRENCY"] = 1
    redis = app.extensions["redis"]
    committed: list[str] = []
    stop_stream = threading.Event()

    def stream():
        index = 0
        while not stop_stream.is_set():
            committed.append(commit_change(app, f"Change {index}"))
            index += 1
            time.sleep(0.02)

    log = tmp_path / "worker.log"
    with running_worker(settings, log, WORKER_CONCURRENCY=4, WEBHOOK_APP_CONCURRENCY=1) as worker:
        wait_for(lambda: redis.keys("rq:worker:*"), 20)
        producer = threading.Thread(target=stream)
        producer.start()
        try:
            time.sleep(2)
            flushed_at = time.monotonic()
            redis.flushdb()
            time.sleep(3)
        finally:
            stop_stream.set()
            producer.join()
        received = lambda: {r.headers["Webhook-Id"] for r in receiver.received}  # noqa: E731
        lost = set(committed) - received()
        wait_for(lambda: set(committed) <= received(), 60)
        recovered_in = time.monotonic() - flushed_at
        assert received() == set(committed)  # nothing under a new webhook-id
        wait_for(lambda: rows(app) == [], 20)  # every row deleted once its message was delivered
        assert worker.poll() is None
        output = stop(worker, (signal.SIGTERM, 0))
    assert worker.returncode == 0, output
    assert "Traceback" not in log.read_text(), log.read_text()
    assert "outbox.recovered" in log.read_text()  # the flush lost queued messages, and they were queued again
    assert recovered_in < 50
    print(json.dumps({"committed": len(committed), "not_yet_delivered_when_the_stream_ended": len(lost),
                      "requests": len(receiver.received), "all_delivered_after_s": round(recovered_in, 1)}))
