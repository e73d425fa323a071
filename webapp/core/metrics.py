"""What operators watch: delivery and ingestion counters, queue depth and age, live workers, apps by status.

Counters live in one Redis hash (``keys.METRICS``), incremented in the pipelines that already record a
delivery or an ingested event, so they are exact across any number of gunicorn and worker processes and
cost no extra round trip. Gauges (queues, workers, apps) are read when Prometheus scrapes. ``/metrics``
renders both with ``prometheus_client``'s text format; ``/readyz`` uses the same readings.
"""

from __future__ import annotations

import time
from collections import defaultdict

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from rq.worker_registration import REDIS_WORKER_KEYS
from sqlalchemy import func, select

from ..models import OutboxJob, SentryApp
from . import keys
from .extensions import db

# Upper bounds (seconds) of the delivery duration histogram; a receiver's answer takes 10 ms to WEBHOOK_TIMEOUT.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# A slot heartbeats every 5 s while idle or busy; one silent for this long is dead (or its process is).
WORKER_ALIVE_SECONDS = 60
QUEUE_STATES = ("queued", "started", "scheduled", "failed", "deferred")
INGEST_RESULTS = ("accepted", "rate_limited", "refused", "dropped")


def count_delivery(pipe, outcome: str, event_type: str, seconds: float | None) -> None:
    """Add one delivery attempt's counters to ``pipe`` (the pipeline or WriteBatch that logs the attempt)."""
    pipe.hincrby(keys.METRICS, f"deliveries|{outcome}|{event_type}", 1)
    if seconds is not None:
        bucket = next((str(bound) for bound in DURATION_BUCKETS if seconds <= bound), "+Inf")
        pipe.hincrby(keys.METRICS, f"duration|{bucket}", 1)
        pipe.hincrbyfloat(keys.METRICS, "duration_sum", seconds)


def count_ingest(pipe, result: str, amount: int = 1) -> None:
    """Add ingested events to ``pipe``: accepted, rate_limited, refused (a 4xx) or dropped (extra items)."""
    pipe.hincrby(keys.METRICS, f"ingest|{result}", amount)


def queue_readings(redis) -> dict[str, dict]:
    """Per queue: jobs in each state and the age in seconds of the oldest job waiting (0 when none)."""
    names = keys.ALL_QUEUES
    pipe = redis.pipeline(transaction=False)
    for name in names:
        pipe.llen(f"rq:queue:{name}")
        for registry in ("wip", "scheduled", "failed", "deferred"):
            pipe.zcard(f"rq:{registry}:{name}")
        pipe.lindex(f"rq:queue:{name}", 0)
    values = pipe.execute()
    readings, heads = {}, []
    for index, name in enumerate(names):
        queued, started, scheduled, failed, deferred, head = values[index * 6:(index + 1) * 6]
        readings[name] = {"jobs": dict(zip(QUEUE_STATES, (queued, started, scheduled, failed, deferred))),
                          "oldest_age": 0.0}
        if head is not None:
            heads.append((name, head.decode() if isinstance(head, bytes) else head))
    if heads:
        pipe = redis.pipeline(transaction=False)
        for _, job_id in heads:
            pipe.hget(f"rq:job:{job_id}", "enqueued_at")
        now = time.time()
        for (name, _), enqueued_at in zip(heads, pipe.execute()):
            readings[name]["oldest_age"] = _age(enqueued_at, now)
    return readings


def _age(enqueued_at, now: float) -> float:
    if not enqueued_at:
        return 0.0
    from rq.utils import str_to_date

    try:
        return max(0.0, now - str_to_date(enqueued_at).timestamp())
    except ValueError:
        return 0.0


def live_workers(redis) -> tuple[int, int]:
    """Return (worker processes, slots) whose heartbeat is recent: each ``worker.py`` runs many RQ workers."""
    worker_keys = [key.decode() if isinstance(key, bytes) else key for key in redis.smembers(REDIS_WORKER_KEYS)]
    if not worker_keys:
        return 0, 0
    pipe = redis.pipeline(transaction=False)
    for key in worker_keys:
        pipe.hget(key, "last_heartbeat")
    now = time.time()
    alive = [key for key, beat in zip(worker_keys, pipe.execute()) if beat and _age(beat, now) <= WORKER_ALIVE_SECONDS]
    # A slot's name is "<host>.<pid>.<slot>.<suffix>": the process is the first two parts.
    processes = {".".join(key.removeprefix("rq:worker:").split(".")[:2]) for key in alive}
    return len(processes), len(alive)


class HooklineCollector:
    """A prometheus_client collector that reads everything at scrape time (no state in this process)."""

    def __init__(self, redis):
        self.redis = redis

    def collect(self):
        counters = {key.decode(): value.decode() for key, value in self.redis.hgetall(keys.METRICS).items()}
        deliveries = CounterMetricFamily("hookline_deliveries", "Delivery attempts by outcome and event type",
                                         labels=["outcome", "event_type"])
        ingest = CounterMetricFamily("hookline_ingest_events", "Events offered to ingestion, by result",
                                     labels=["result"])
        buckets: dict[str, int] = defaultdict(int)
        found_ingest = set()
        for field, value in sorted(counters.items()):
            kind, _, rest = field.partition("|")
            if kind == "deliveries":
                outcome, _, event_type = rest.partition("|")
                deliveries.add_metric([outcome, event_type], int(value))
            elif kind == "ingest":
                ingest.add_metric([rest], int(value))
                found_ingest.add(rest)
            elif kind == "duration":
                buckets[rest] = int(value)
        for result in INGEST_RESULTS:
            if result not in found_ingest:
                ingest.add_metric([result], 0)
        yield deliveries
        yield ingest

        cumulative, running = [], 0
        for bound in (*map(str, DURATION_BUCKETS), "+Inf"):
            running += buckets.get(bound, 0)
            cumulative.append((bound, running))
        yield HistogramMetricFamily("hookline_delivery_duration_seconds", "Time from sending a delivery to its answer (or its failure: refused, timed out)",
                                    buckets=cumulative, sum_value=float(counters.get("duration_sum", 0)))

        readings = queue_readings(self.redis)
        jobs = GaugeMetricFamily("hookline_queue_jobs", "RQ jobs per queue and state", labels=["queue", "state"])
        age = GaugeMetricFamily("hookline_queue_oldest_job_age_seconds", "Age of the oldest job waiting in the queue",
                                labels=["queue"])
        for name, reading in readings.items():
            for state, count in reading["jobs"].items():
                jobs.add_metric([name, state], count)
            age.add_metric([name], reading["oldest_age"])
        yield jobs
        yield age

        processes, slots = live_workers(self.redis)
        yield GaugeMetricFamily("hookline_workers", "Live worker processes (python worker.py)", value=processes)
        yield GaugeMetricFamily("hookline_worker_slots", "Live RQ workers (slots) across all worker processes",
                                value=slots)

        apps = GaugeMetricFamily("hookline_apps", "Internal apps by status", labels=["status"])
        by_status = dict(db.session.execute(select(SentryApp.status, func.count()).group_by(SentryApp.status)).all())
        for status in sorted({"enabled", "disabled", *by_status}):
            apps.add_metric([status], by_status.get(status, 0))
        yield apps
        waiting, kept = db.session.execute(select(
            func.count().filter(OutboxJob.queued_at.is_(None)), func.count(OutboxJob.queued_at))).one()
        yield GaugeMetricFamily("hookline_outbox_rows", "Committed jobs not yet handed to RQ (Redis was away)",
                                value=waiting or 0)
        yield GaugeMetricFamily("hookline_outbox_kept_messages",
                                "Messages queued on RQ and kept in the database until delivered or given up",
                                value=kept or 0)
