"""The periodic metric-alert evaluation: a job that schedules its successor with RQ's own scheduler."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from .. import keys
from ..redis_store import get_redis
from .queues import get_queue

TICK_SECONDS = 60


def schedule_metric_alert_tick(now: float | None = None) -> str | None:
    """Schedule ``evaluate_metric_alerts`` at the next whole minute unless a worker already did; return its job id."""
    due = (int(now if now is not None else time.time()) // TICK_SECONDS + 1) * TICK_SECONDS
    if not get_redis().set(keys.metric_alert_tick(due), 1, nx=True, ex=3 * TICK_SECONDS):
        return None
    job = get_queue(keys.WEBHOOK_QUEUE).enqueue_at(
        datetime.fromtimestamp(due, timezone.utc), "webapp.dispatch.tasks.evaluate_metric_alerts",
        job_id=f"hookline-metric-alert-tick-{due}", result_ttl=TICK_SECONDS, job_timeout=TICK_SECONDS * 5,
    )
    return job.id
