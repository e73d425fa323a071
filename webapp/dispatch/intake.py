"""Accept, then process: ingestion hands each event to the workers, which store it, group it and fan it out.

The endpoint authenticates, bounds and validates; then ``queue_event`` writes the event's JSON to Redis and
queues a ``store_queued_event`` job in one MULTI, and the SDK gets its ``{"id"}``. The job carries the two
ids only, so no event can break a job's serialisation; the payload waits under its own key
(``keys.queued_event``, kept ``keys.QUEUED_EVENT_TTL``) until the event is stored.

Nothing acknowledged is lost: the job is as durable as every delivery (RQ's recoverable dequeue, the
engine's sweeps, crash retries), and the event is committed with its post-processing job (the outbox), so a
re-run after a crash stores nothing twice: the event id is unique per project. Without Redis the endpoint
stores the event itself, as before, and its post-processing waits in the outbox for Redis to come back.
"""

from __future__ import annotations

import json
import logging
import uuid

from ..alerts.eventstore import StoredEvent, event_id_of, store_event
from ..alerts.issue_reopening import user_identity
from ..core import keys
from ..core.cache import get_from_cache
from ..core.outbox import enqueue_specs
from ..core.redis_store import get_redis
from ..models import Project
from .fanout import enqueue_task_after_commit
from .queues import task_spec

logger = logging.getLogger(__name__)


def queue_event(project_id: int, raw: dict, also=None) -> str:
    """Queue the event for the workers and return its id; raises RedisError when Redis does not take it.

    ``also(pipeline)`` adds commands to the same MULTI (the request's counts), saving a round trip.
    """
    event_id = event_id_of(raw)
    payload = json.dumps({**raw, "event_id": event_id})  # ensure_ascii: a lone surrogate travels as an escape
    spec = task_spec("webapp.dispatch.intake.store_queued_event", (project_id, event_id))
    # A fresh job id per request: a retried request queues a second job, and the event is stored once anyway.
    spec.job_id = f"ingest-{uuid.uuid4().hex}"
    key = keys.queued_event(project_id, event_id)
    # NX: while an event id waits, the first copy is the one stored (as for a stored one); the second job
    # then finds the first payload, or none once it is stored.
    def write(pipe):
        pipe.set(key, payload, ex=keys.QUEUED_EVENT_TTL, nx=True)
        if also is not None:
            also(pipe)

    enqueue_specs([spec], also=write)
    return event_id


def store_now(project, raw: dict) -> str:
    """Store the event in this request (Redis is away); its post-processing waits in the outbox."""
    event_id, _ = store_event(project, raw, then=post_process_after_commit)
    return event_id


def store_queued_event(project_id: int, event_id: str) -> str:
    """The job: store a queued event in its issue, with its post-processing job in the same commit."""
    redis = get_redis()
    key = keys.queued_event(project_id, event_id)
    payload = redis.get(key)
    if payload is None:  # stored by an earlier run of this job (or a retried request's), or expired
        logger.info("ingest.no_payload project=%s event=%s", project_id, event_id)
        return "gone"
    project = get_from_cache(Project, project_id)
    if project is None:
        logger.info("ingest.project_deleted project=%s event=%s", project_id, event_id)
        redis.delete(key)
        return "project deleted"
    raw = json.loads(payload)
    _, stored = store_event(project, raw, then=post_process_after_commit)
    pipe = redis.pipeline(transaction=False)
    user = user_identity(raw.get("user"))
    if stored is not None and user:
        pipe.pfadd(keys.group_users(stored.group_id), user)  # the issue's userCount
    pipe.delete(key)
    pipe.execute()
    return "stored" if stored else "duplicate"


def post_process_after_commit(stored: StoredEvent) -> None:
    enqueue_task_after_commit("webapp.dispatch.tasks.post_process_event", stored.event_id, stored.is_new_group,
                              stored.is_regression)
