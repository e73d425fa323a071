"""The outbox: RQ jobs committed in the same database transaction as the change that implies them.

A change that must send webhooks (an ingested event, an issue resolved, an incident opened, an app
disabled) adds its jobs with ``enqueue_after_commit``. They are rows of ``outbox_job`` until the commit;
right after it they are queued on RQ. If Redis does not answer then, the rows stay and a worker's
housekeeping (``sweep_outbox``) queues them a few seconds later. So a committed change is never without its
jobs, and a rolled-back one never has them.

Once queued, a job's row is deleted, except a message's (a spec with a ``message_id``: a delivery, or a task
that sends one): Redis may still lose it (a failover to a replica that missed the newest writes, a flush), so
its row stays, marked ``queued_at``, until the message is delivered or given up. Its last attempt adds the
webhook-id to ``keys.OUTBOX_DONE`` with the attempt's log entry, and the housekeeper deletes those rows in
batches (``dispatch/recovery.py``, which also queues again the messages Redis lost).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, timezone

from redis.exceptions import RedisError
from rq import Queue, RateLimit, Retry
from sqlalchemy import delete, event, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..models import OutboxJob, utcnow
from .extensions import db
from .redis_store import get_redis

logger = logging.getLogger(__name__)

_PENDING = "hookline_outbox"  # key in Session.info: the specs added in the open transaction


@dataclass
class JobSpec:
    """Everything RQ needs to queue one job, in plain JSON-able values."""

    func: str
    args: list
    queue: str
    timeout: int
    # A finished job (its pickled arguments and its result, about 7 KB for a delivery) stays in Redis this long.
    # Deliveries and tasks take JOB_RESULT_TTL (seconds: Redis holds rate x that of them) and mail a week: every
    # spec of dispatch/queues.py names its own.
    result_ttl: int = 60
    failure_ttl: int = 30 * 24 * 3600
    retry: list | None = None  # [max, [intervals...]]
    rate_limit: list | None = None  # [key, concurrency]
    # Held this long in RQ's scheduled registry before it is queued (a fan-out's runners may take it sooner).
    defer_seconds: float = 0.0
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # The webhook-id of the message the job sends (its row is kept until it is delivered or given up), if any.
    message_id: str | None = None

    def rq_retry(self) -> Retry | None:
        return Retry(max=self.retry[0], interval=self.retry[1]) if self.retry else None

    def rq_rate_limit(self) -> RateLimit | None:
        return RateLimit(self.rate_limit[0], self.rate_limit[1]) if self.rate_limit else None

    def to_json(self) -> str:
        # Not dataclasses.asdict: it deep-copies the args (an event's whole payload) only for json to read them.
        return json.dumps({spec_field.name: getattr(self, spec_field.name) for spec_field in fields(self)})

    @classmethod
    def from_json(cls, text: str) -> "JobSpec":
        """Read a spec, ignoring fields this version does not know (a newer release may have written it)."""
        known = {spec_field.name for spec_field in fields(cls)}
        return cls(**{name: value for name, value in json.loads(text).items() if name in known})


def enqueue_specs(specs: list[JobSpec], connection=None, also=None) -> list[str]:
    """Queue the jobs now, all in one MULTI round trip; return their ids.

    A job with a rate limit goes through RQ's RateLimit registry: queued at once while its key has a free
    slot, else held until a job of that key ends. A job with ``defer_seconds`` goes to RQ's scheduled
    registry instead, and through the rate limit when it is due. ``also(pipeline)`` adds commands that must be written
    with the jobs, all or nothing (the payload a job reads).
    """
    if not specs:
        return []
    connection = connection or get_redis()
    pipe = connection.pipeline()
    queues: dict[str, Queue] = {}  # each queue made, and registered in RQ's set of queues, once per call
    for spec in specs:
        queue = queues.get(spec.queue)
        if queue is None:
            queue = queues[spec.queue] = Queue(spec.queue, connection=connection)
            pipe.sadd(queue.redis_queues_keys, queue.key)
        job = queue.create_job(
            spec.func, args=tuple(spec.args), timeout=spec.timeout, result_ttl=spec.result_ttl,
            failure_ttl=spec.failure_ttl, job_id=spec.job_id, retry=spec.rq_retry(), rate_limit=spec.rq_rate_limit(),
        )
        if spec.defer_seconds > 0:
            queue.schedule_job(job, datetime.now(timezone.utc) + timedelta(seconds=spec.defer_seconds), pipeline=pipe)
        elif job.has_rate_limit:
            # RQ's public enqueue refuses a pipeline for rate-limited jobs; its scheduler batches them this way.
            queue._enqueue_rate_limited_job(job, pipeline=pipe)
        else:
            queue._enqueue_job(job, pipeline=pipe)
    if also is not None:
        also(pipe)
    pipe.execute()
    return [spec.job_id for spec in specs]


def schedule_spec(spec: JobSpec, delay_seconds: float, connection=None) -> str:
    """Queue the job after ``delay_seconds`` (RQ's scheduled registry; promoted by the workers' housekeeping)."""
    connection = connection or get_redis()
    queue = Queue(spec.queue, connection=connection)
    queue.enqueue_in(
        timedelta(seconds=delay_seconds), spec.func, *spec.args, job_timeout=spec.timeout, result_ttl=spec.result_ttl,
        failure_ttl=spec.failure_ttl, job_id=spec.job_id, retry=spec.rq_retry(), rate_limit=spec.rq_rate_limit(),
    )
    return spec.job_id


def enqueue_after_commit(spec: JobSpec) -> str:
    """Write the job into the open transaction; it is queued when that transaction commits. Return its id."""
    db.session.add(OutboxJob(job_id=spec.job_id, spec_json=spec.to_json(), message_id=spec.message_id))
    db.session.info.setdefault(_PENDING, []).append(spec)
    return spec.job_id


@event.listens_for(Session, "after_commit")
def _queue_committed_jobs(session: Session) -> None:
    specs = session.info.pop(_PENDING, None)
    if specs:
        flush_specs(specs)


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back_jobs(session: Session) -> None:
    session.info.pop(_PENDING, None)


def flush_specs(specs: list[JobSpec]) -> bool:
    """Queue committed jobs, then mark the messages' rows queued and delete the others; on a Redis or database
    fault leave the rows to the sweep."""
    try:
        enqueue_specs(specs)
    except RedisError as exc:
        logger.warning("outbox.deferred jobs=%s reason=%r (a worker queues them within seconds)", len(specs), str(exc))
        return False
    messages = [spec.job_id for spec in specs if spec.message_id]
    others = [spec.job_id for spec in specs if not spec.message_id]
    try:
        with db.engine.begin() as connection:
            if messages:
                connection.execute(update(OutboxJob).where(OutboxJob.job_id.in_(messages)).values(queued_at=utcnow()))
            if others:
                connection.execute(delete(OutboxJob).where(OutboxJob.job_id.in_(others)))
    except SQLAlchemyError as exc:
        # The jobs are queued; the sweep would queue them again under the same job ids (same webhook-ids).
        logger.warning("outbox.rows_kept jobs=%s reason=%s", len(specs), exc.__class__.__name__)
    return True


def sweep_outbox(older_than_seconds: float = 5.0, batch: int = 500) -> int:
    """Queue the committed jobs whose after-commit queueing failed (older than the given age); return how many."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    rows = db.session.execute(
        select(OutboxJob.job_id, OutboxJob.spec_json).where(OutboxJob.created_at < cutoff, OutboxJob.queued_at.is_(None))
        .order_by(OutboxJob.id).limit(batch)
    ).all()
    db.session.rollback()  # end the read transaction before talking to Redis
    if not rows:
        return 0
    specs = []
    for job_id, spec_json in rows:
        try:
            specs.append(JobSpec.from_json(spec_json))
        except (ValueError, TypeError):
            logger.exception("outbox.unreadable job=%s: left in outbox_job for an operator", job_id)
    if specs and flush_specs(specs):
        logger.info("outbox.swept jobs=%s", len(specs))
        return len(specs)
    return 0
