"""What ingestion did with each project's events (accepted, rate-limited, refused, dropped), per UTC hour in Redis."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.exceptions import RedisError

from ..core import clock, keys
from ..core.metrics import count_ingest
from ..core.redis_store import get_redis

logger = logging.getLogger(__name__)

OUTCOMES = ("accepted", "rate_limited", "refused", "dropped")
WINDOW_HOURS = 24


@dataclass
class Outcomes:
    """What became of one request's events: counted for its project (and key) once the project is known.

    ``refused`` counts requests answered with a 4xx other than 429; ``dropped`` counts the event items of an
    envelope beyond the one it may carry.
    """

    project_id: int | None = None
    key_id: int | None = None
    accepted: int = 0
    rate_limited: int = 0
    refused: int = 0
    dropped: int = 0


def count_outcomes(outcomes: Outcomes) -> None:
    """Add one request's outcomes to its project's bucket for this hour and to /metrics, in one round trip.

    A request for no known project counts in /metrics only. Never raises.
    """
    try:
        pipe = get_redis().pipeline(transaction=False)
        if add_outcomes(pipe, outcomes):
            pipe.execute()
    except RedisError as exc:  # the event's fate is decided; only its count is lost
        logger.warning("ingest.outcomes_uncounted project=%s reason=%s", outcomes.project_id, exc.__class__.__name__)


def add_outcomes(pipe, outcomes: Outcomes) -> bool:
    """Add the commands that count ``outcomes`` to ``pipe`` (an accepted event's: the MULTI that queues it).

    Return whether there was anything to count.
    """
    counts = {name: getattr(outcomes, name) for name in OUTCOMES if getattr(outcomes, name)}
    for name, count in counts.items():
        count_ingest(pipe, name, count)
    if counts and outcomes.project_id is not None:
        bucket = keys.ingest_outcomes(outcomes.project_id, _hour(clock.now().timestamp()))
        for name, count in counts.items():
            pipe.hincrby(bucket, name, count)
            if outcomes.key_id is not None:
                pipe.hincrby(bucket, f"key:{outcomes.key_id}:{name}", count)
        pipe.expire(bucket, keys.INGEST_OUTCOMES_TTL)
    return bool(counts)


def last_day_outcomes(project_id: int) -> tuple[dict[str, int], dict[int, dict[str, int]]] | None:
    """Return the project's outcomes of the last 24 hours (this hour and the 23 before), in total and per key id.

    None when Redis does not answer.
    """
    now = _hour(clock.now().timestamp())
    pipe = get_redis().pipeline(transaction=False)
    for hours_ago in range(WINDOW_HOURS):
        pipe.hgetall(keys.ingest_outcomes(project_id, now - hours_ago * 3600))
    try:
        buckets = pipe.execute()
    except RedisError as exc:
        logger.warning("ingest.outcomes_unread project=%s reason=%s", project_id, exc.__class__.__name__)
        return None
    totals = dict.fromkeys(OUTCOMES, 0)
    per_key: dict[int, dict[str, int]] = {}
    for bucket in buckets:
        for raw_field, raw_count in bucket.items():
            field, count = raw_field.decode(), int(raw_count)
            if field in totals:
                totals[field] += count
            elif field.startswith("key:"):
                _, key_id, name = field.split(":", 2)
                counts = per_key.setdefault(int(key_id), dict.fromkeys(OUTCOMES, 0))
                counts[name] = counts.get(name, 0) + count
    return totals, per_key


def _hour(timestamp: float) -> int:
    return int(timestamp) // 3600 * 3600
