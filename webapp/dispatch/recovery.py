"""Messages Redis lost, queued again from the outbox; the rows of messages that are done, deleted in batches.

A message's outbox row stays after its job is queued (``webapp/core/outbox.py``), because Redis may still lose the
job: a failover to a replica that missed the newest writes, a restart without persistence, a flush. Two passes
of the housekeeper, in one worker process at a time (under its maintenance lock), every few seconds:

``drain_done``
    The messages whose last attempt is recorded (delivered, given up after the last retry, kept for a disabled
    app, or dropped with a deleted app) are in ``keys.OUTBOX_DONE``, written with that attempt's log entry. Their
    rows are deleted, up to DRAIN_CHUNK per statement, reading on from a cursor. A marker written before a row
    (less a margin for clocks that differ between machines) is an earlier send of the same webhook-id, such as
    the message a replay sends again, and leaves that row alone.

``recover_lost``
    Rows queued more than LOST_AFTER seconds ago, RECOVER_BATCH per pass, going round by id. One pipeline asks
    Redis for each row's job status, the statuses of the retries that may follow it (their ids are known:
    ``queues.retry_job_id``) and its done marker. Then a row is

    - done (its marker): deleted;
    - alive (the job or one of its retries is queued, scheduled, held or running): left alone;
    - given up (failed for good, or stopped or cancelled by an operator: RQ's registries keep it): deleted;
    - lost (none of these): its job is queued again from the row, under the same job id and webhook-id. An
      attempt the receiver already had comes again (as attempt 1), and the receiver can tell by the webhook-id.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import bindparam, select

from ..core import keys
from ..core.extensions import db
from ..core.outbox import JobSpec, flush_specs
from ..core.redis_store import get_redis
from ..models import OutboxJob, utcnow
from .queues import DELIVER_JOB, retry_job_id

logger = logging.getLogger(__name__)

DRAIN_CHUNK = 1000  # done messages whose rows go in one statement
DRAIN_MAX = 20_000  # per pass; the rest next pass
DRAIN_LAG = 1.0  # seconds: markers this recent wait for the next pass (one written a moment earlier may come later)
CLOCK_MARGIN = 5.0  # seconds by which a marker may precede its row (machines' clocks differ) and still count
LOST_AFTER = 10.0  # seconds after its job was queued before a row is checked
RECOVER_BATCH = 500
ALIVE = frozenset({b"queued", b"started", b"scheduled", b"deferred", b"created"})
GIVEN_UP = frozenset({b"failed", b"stopped", b"canceled"})
ROWS = OutboxJob.__table__


def drain_done(connection=None) -> int:
    """Delete the rows of the messages marked done since the last pass; return how many markers were read."""
    connection = connection or get_redis()
    cursor = float(connection.get(keys.OUTBOX_DONE_CURSOR) or 0)
    until = time.time() - DRAIN_LAG
    read = 0
    statement = ROWS.delete().where(ROWS.c.message_id == bindparam("done_id"),
                                    ROWS.c.created_at <= bindparam("done_at"))
    while read < DRAIN_MAX:
        # After the cursor, not at it: each marker is read once (one that shares the cursor's score exactly and was
        # cut off by the chunk's end is left to ``recover_lost``, which finds it done).
        markers = connection.zrangebyscore(keys.OUTBOX_DONE, f"({cursor!r}", until, start=0, num=DRAIN_CHUNK,
                                           withscores=True)
        if not markers:
            break
        with db.engine.begin() as database:
            database.execute(statement, [{"done_id": member.decode(), "done_at": _naive_utc(score + CLOCK_MARGIN)}
                                         for member, score in markers])
        read += len(markers)
        cursor = markers[-1][1]
        connection.set(keys.OUTBOX_DONE_CURSOR, repr(cursor))
        if len(markers) < DRAIN_CHUNK:
            break
    # Markers outlive their draining by OUTBOX_DONE_KEEP: ``recover_lost`` reads them for rows not yet drained.
    connection.zremrangebyscore(keys.OUTBOX_DONE, "-inf", f"({min(cursor, until) - keys.OUTBOX_DONE_KEEP!r}")
    return read


def recover_lost(connection=None) -> dict[str, int]:
    """Check the next RECOVER_BATCH rows queued LOST_AFTER ago or more (see the module docstring); return counts."""
    connection = connection or get_redis()
    after = int(connection.get(keys.OUTBOX_RECOVER_CURSOR) or 0)
    rows = db.session.execute(
        select(OutboxJob.id, OutboxJob.job_id, OutboxJob.message_id, OutboxJob.spec_json, OutboxJob.created_at)
        .where(OutboxJob.queued_at < utcnow() - timedelta(seconds=LOST_AFTER), OutboxJob.id > after)
        .order_by(OutboxJob.id).limit(RECOVER_BATCH)
    ).all()
    db.session.rollback()  # end the read transaction before talking to Redis
    counts = {"done": 0, "alive": 0, "given_up": 0, "lost": 0}
    if not rows:
        connection.delete(keys.OUTBOX_RECOVER_CURSOR)  # round again from the start next pass
        return counts
    retries = len(current_app.config["WEBHOOK_RETRY_SCHEDULE"])
    candidates = {}
    pipe = connection.pipeline(transaction=False)
    for row in rows:
        spec = _spec(row)
        candidates[row.id] = [row.job_id] + ([retry_job_id(row.message_id, attempt, _is_resend(spec))
                                               for attempt in range(1, retries + 1)] if spec else [])
        for job_id in candidates[row.id]:
            pipe.hget(f"rq:job:{job_id}", "status")
        pipe.zscore(keys.OUTBOX_DONE, row.message_id)
    replies = iter(pipe.execute())
    finished, lost = [], []
    for row in rows:
        statuses = [next(replies) for _ in candidates[row.id]]
        marker = next(replies)
        if marker is not None and marker + CLOCK_MARGIN >= _epoch(row.created_at):
            counts["done"] += 1
            finished.append(row.id)
        elif any(status in ALIVE for status in statuses):
            counts["alive"] += 1
        elif any(status in GIVEN_UP for status in statuses):
            counts["given_up"] += 1
            finished.append(row.id)
        elif (spec := _spec(row)) is not None:
            counts["lost"] += 1
            lost.append(spec)
    if finished:
        with db.engine.begin() as database:
            database.execute(ROWS.delete().where(ROWS.c.id.in_(finished)))
    if lost and flush_specs(lost):
        logger.warning("outbox.recovered jobs=%s: Redis had lost them; queued again under their webhook-ids",
                       len(lost))
    connection.set(keys.OUTBOX_RECOVER_CURSOR, rows[-1].id)
    return counts


def _spec(row) -> JobSpec | None:
    try:
        return JobSpec.from_json(row.spec_json)
    except (ValueError, TypeError):
        logger.exception("outbox.unreadable job=%s: left in outbox_job for an operator", row.job_id)
        return None


def _is_resend(spec: JobSpec) -> bool:
    """Whether the spec is a resend (its retries have ids of their own): ``deliver_webhook``'s ``resend``."""
    return spec.func == DELIVER_JOB and len(spec.args) > 8 and bool(spec.args[8])


def _naive_utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc).replace(tzinfo=None)


def _epoch(value: datetime) -> float:
    return value.replace(tzinfo=value.tzinfo or timezone.utc).timestamp()
