"""Housekeeping and the worker class under faults that leave RQ's state half-written or the database away."""

import json
import threading
import time

from rq import Queue, Retry
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry

from webapp.core import keys
from webapp.core.extensions import db
from webapp.core.outbox import JobSpec, sweep_outbox
from webapp.dispatch.housekeeping import requeue_orphaned_jobs
from webapp.dispatch.queues import make_worker
from webapp.models import OutboxJob


def run_burst(app, queue_name=keys.WEBHOOK_QUEUE) -> None:
    make_worker(app, [queue_name]).work(burst=True, logging_level="WARNING")


def test_a_job_failing_on_a_database_outage_keeps_its_retries(app):
    queue = Queue(keys.WEBHOOK_QUEUE, connection=app.extensions["redis"])
    outage = queue.enqueue("tests.engine.jobs.fail_like_a_database_outage", retry=Retry(max=3, interval=[10, 60, 300]))
    bug = queue.enqueue("tests.engine.jobs.fail_like_a_bug", retry=Retry(max=3, interval=[10, 60, 300]))
    run_burst(app)
    outage, bug = Job.fetch(outage.id, connection=queue.connection), Job.fetch(bug.id, connection=queue.connection)
    assert outage.get_status() == bug.get_status() == JobStatus.SCHEDULED
    assert outage.retries_left == 3  # an outage is not the job's fault: its retry is not used up
    assert bug.retries_left == 2


def test_a_job_left_marked_scheduled_but_in_no_registry_is_scheduled_again(app):
    """A worker killed between RQ marking a job ``scheduled`` and registering it leaves it nowhere."""
    redis = app.extensions["redis"]
    queue = Queue(keys.RETRY_QUEUE, connection=redis)
    job = queue.enqueue("tests.engine.jobs.fail_like_a_bug")
    redis.lrem(queue.key, 0, job.id)
    redis.hset(job.key, "status", JobStatus.SCHEDULED.value)
    queued = queue.enqueue("tests.engine.jobs.fail_like_a_bug")  # in its queue: left alone

    assert requeue_orphaned_jobs(redis) == [job.id]
    registry = ScheduledJobRegistry(keys.RETRY_QUEUE, connection=redis)
    assert registry.get_job_ids() == [job.id]
    assert abs(registry.get_scheduled_time(job.id).timestamp() - time.time()) < 5  # due now
    assert queue.job_ids == [queued.id]
    assert requeue_orphaned_jobs(redis) == []  # and once only


def test_a_job_popped_by_a_dead_worker_is_queued_again(app):
    redis = app.extensions["redis"]
    queue = Queue(keys.WEBHOOK_QUEUE, connection=redis)
    job = queue.enqueue("tests.engine.jobs.fail_like_a_bug")
    redis.lpop(queue.key)  # a plain pop whose worker died before it ran the job: status queued, in no list
    assert requeue_orphaned_jobs(redis) == [job.id]
    assert queue.job_ids == [job.id]


def test_a_job_left_in_the_intermediate_list_by_a_dead_worker_runs_again_within_seconds(app, monkeypatch):
    from webapp.dispatch import housekeeping
    from webapp.dispatch.housekeeping import Housekeeper

    redis = app.extensions["redis"]
    queue = Queue(keys.WEBHOOK_QUEUE, connection=redis)
    job = queue.enqueue("tests.engine.jobs.fail_like_a_bug", retry=Retry(max=3, interval=[10, 60, 300]))
    redis.lmove(queue.key, queue.intermediate_queue_key, "LEFT", "RIGHT")  # popped; its worker died at once
    keeper = Housekeeper(app, "test-keeper", threading.Event())

    with app.app_context():
        keeper.maintain()  # first seen: a live worker would have started it within milliseconds
        assert redis.lrange(queue.intermediate_queue_key, 0, -1) == [job.id.encode()]
        monkeypatch.setattr(housekeeping, "STUCK_SECONDS", 0)  # STUCK_SECONDS (15 s) later, not RQ's minute
        keeper.maintain()

    assert redis.lrange(queue.intermediate_queue_key, 0, -1) == []
    assert Job.fetch(job.id, connection=redis).get_status() == JobStatus.SCHEDULED  # its crash retry
    assert Job.fetch(job.id, connection=redis).retries_left == 2


def test_the_outbox_sweep_reads_rows_of_a_newer_release_and_skips_unreadable_ones(app, caplog):
    with app.app_context():
        newer = JobSpec("tests.engine.jobs.fail_like_a_bug", [], keys.WEBHOOK_QUEUE, timeout=30)
        spec = json.loads(newer.to_json()) | {"priority": "high"}  # a field this release does not know
        db.session.add(OutboxJob(job_id=newer.job_id, spec_json=json.dumps(spec)))
        db.session.add(OutboxJob(job_id="broken", spec_json="{not json"))
        db.session.commit()
        assert sweep_outbox(older_than_seconds=0) == 1
        assert [row.job_id for row in db.session.query(OutboxJob)] == ["broken"]  # kept for an operator
    assert Queue(keys.WEBHOOK_QUEUE, connection=app.extensions["redis"]).job_ids == [newer.job_id]
    assert "outbox.unreadable job=broken" in caplog.text
