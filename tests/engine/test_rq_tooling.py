"""``rq info`` on Hookline's workers tells an operator the truth: each slot idle once the queues drain, and every
job a slot ran counted, including the deliveries run in batches and by fan-out runners."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

from rq.job import Job
from rq.registry import FinishedJobRegistry
from sqlalchemy import select

from tests.engine.test_worker_process import running_worker, stop, wait_for
from tests.lifecycle import pager, send  # noqa: F401 - pager is a fixture
from webapp.apps.internal_apps import register_internal_app
from webapp.core import keys
from webapp.core.extensions import db
from webapp.dispatch.fanout import notify_resource_change
from webapp.models import Organization

SLOTS = 1 + 1 + 1 + 4  # periodic, mail, retries, first attempts (WORKER_CONCURRENCY=4)
WORKER_LINE = re.compile(r"^worker (\S+) \(.*\) (\S+) ([\w-]+)\. jobs: (\d+) finished, (\d+) failed$")


def rq_info(settings) -> dict[str, tuple[str, str, int, int]]:
    """Run ``rq info`` as an operator would; return each worker's (state, queue, finished, failed)."""
    output = subprocess.run([sys.executable, "-m", "rq.cli", "info", "--raw", "--url", settings["REDIS_URL"],
                             *keys.ALL_QUEUES], capture_output=True, text=True, check=True).stdout
    workers = {}
    for line in output.splitlines():
        match = WORKER_LINE.match(line)
        if match:
            name, state, queue, finished, failed = match.groups()
            workers[name] = (state, queue, int(finished), int(failed))
    return workers


def finished_jobs(redis) -> list[Job]:
    return [Job.fetch(job_id, connection=redis) for name in keys.ALL_QUEUES
            for job_id in FinishedJobRegistry(name, connection=redis).get_job_ids()]


def test_rq_info_shows_idle_slots_and_counts_every_job_they_ran(app, settings, pager, receiver, tmp_path):
    receiver.respond()
    redis = app.extensions["redis"]
    with app.app_context():  # three more apps of the organisation: an issue change fans out to four
        organization = db.session.scalar(select(Organization).where(Organization.slug == "acme"))
        for index in range(3):
            register_internal_app(organization, f"Mirror {index}", receiver.url("/hook"), ["issue"])
        organization_id = organization.id
    log = tmp_path / "worker.log"
    with running_worker(settings, log, WORKER_CONCURRENCY=4, MAIL_CONCURRENCY=1, WEBHOOK_APP_CONCURRENCY=1) as worker:
        wait_for(lambda: len(rq_info(settings)) == SLOTS, 20)
        send(app, pager, 30)  # one app at one attempt in flight: a backlog, run in batches
        with app.app_context():
            notify_resource_change(organization_id, "issue.resolved", {"issue": {"id": "7", "title": "Fails"}})
            db.session.commit()
        wait_for(lambda: len(receiver.received) == 34, 20)

        def executions() -> set[str]:
            return {job.latest_result().execution_id.split("-")[0] for job in finished_jobs(redis)}

        # A batch or a runner marks its deliveries finished after their POSTs (a chunk, or four, at a time):
        # some ran in a batch, some in a fan-out runner.
        wait_for(lambda: {"batch", "fanout"} <= executions(), 10, interval=0.1)
        finished = finished_jobs(redis)
        assert all(job.enqueued_at is not None for job in finished)  # rq-dashboard shows when each was queued

        # The minute tick may finish between two reads: read both until they describe the same moment.
        readings = []

        def idle_and_counted():
            shown, finished = rq_info(settings), finished_jobs(redis)
            readings.append((shown, len(finished)))
            return (all(state == "idle" for state, *_ in shown.values())
                    and sum(count for *_, count, _failed in shown.values()) == len(finished))

        try:
            wait_for(idle_and_counted, 10, interval=0.2)
        except AssertionError:
            raise AssertionError(f"rq info never matched the finished registries: {readings[-3:]}") from None
        workers, _ = readings[-1]
        assert sorted(queue for _, queue, *_ in workers.values()) == sorted(
            [keys.PERIODIC_QUEUE, keys.MAIL_QUEUE, keys.RETRY_QUEUE] + [keys.WEBHOOK_QUEUE] * 4)
        assert sum(failed for *_, failed in workers.values()) == 0
        stop(worker, (signal.SIGTERM, 0))
    assert "Traceback" not in log.read_text(), log.read_text()
