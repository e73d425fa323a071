"""The minute tick: evaluate every metric alert rule once a minute, on a queue of its own."""

from __future__ import annotations

import time

from rq import Retry

from ..core import keys
from ..core.redis_store import get_redis
from .queues import get_queue

TICK_SECONDS = 60
TICK_RETRIES, TICK_RETRY_SECONDS = 3, 5


def enqueue_metric_alert_tick(now: float | None = None) -> str | None:
    """Queue this minute's ``evaluate_metric_alerts`` unless a worker process already did; return its job id.

    Every worker process's housekeeper calls this every few seconds, so the tick runs every minute
    whatever became of the previous one (a failed tick does not stop the next); ``SET NX`` on the
    minute makes it once per minute across all processes and machines.
    """
    minute = int(now if now is not None else time.time()) // TICK_SECONDS * TICK_SECONDS
    if not get_redis().set(keys.metric_alert_tick(minute), 1, nx=True, ex=3 * TICK_SECONDS):
        return None
    # A tick that meets a database outage is retried every TICK_RETRY_SECONDS (an outage does not use up its
    # retries), so the rules are evaluated within seconds of the database's return, not at the next minute.
    job = get_queue(keys.PERIODIC_QUEUE).enqueue(
        "webapp.dispatch.tasks.evaluate_metric_alerts", job_id=f"hookline-metric-alert-tick-{minute}",
        result_ttl=10 * TICK_SECONDS, failure_ttl=24 * 3600, job_timeout=TICK_SECONDS - 5,
        retry=Retry(max=TICK_RETRIES, interval=TICK_RETRY_SECONDS),
    )
    return job.id
