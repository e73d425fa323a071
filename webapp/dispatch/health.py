"""Daily delivery health per app (``IntegrationRequestBuffer``) and the rules that call an app broken."""

from __future__ import annotations

from datetime import date, timedelta

import redis

from ..core import keys

FIELDS = {"success": "success_count", "error": "error_count", "timeout": "timeout_count", "fatal": "fatal_count"}


# One command for many days and apps: HMGET in a loop on the server instead of one command per hash, which
# costs redis-py ~75 us each (700 for the apps list's sparklines).
_READ_COUNTS = """
local out = {}
for i, key in ipairs(KEYS) do
  local row = redis.call('HMGET', key, 'success_count', 'error_count', 'timeout_count', 'fatal_count')
  for j = 1, 4 do out[#out + 1] = row[j] or false end
end
return out
"""


def read_counts(client: redis.Redis, hash_keys: list[str]) -> list[dict[str, int]]:
    """Return the counts of each health hash in ``hash_keys`` (zeros where absent), in one round trip."""
    if not hash_keys:
        return []
    flat = client.eval(_READ_COUNTS, len(hash_keys), *hash_keys)
    return [counts_of(flat[index:index + 4]) for index in range(0, len(flat), 4)]


# The charts' figure of a day: the larger of its history hash and its counter hash, field by field, computed on
# the server so the apps list reads 4 numbers per app and day, not 8. KEYS: the history keys, then the counter
# keys of the same days in the same order.
_READ_HISTORY = """
local days = #KEYS / 2
local out = {}
for i = 1, days do
  local kept = redis.call('HMGET', KEYS[i], 'success_count', 'error_count', 'timeout_count', 'fatal_count')
  local counted = redis.call('HMGET', KEYS[days + i], 'success_count', 'error_count', 'timeout_count', 'fatal_count')
  for j = 1, 4 do out[#out + 1] = math.max(tonumber(kept[j]) or 0, tonumber(counted[j]) or 0) end
end
return out
"""


def display_history(client: redis.Redis, apps: list[tuple[int, int]], span: list[date]) -> list[list[dict[str, int]]]:
    """Return the charts' counts of each (app id, organisation id) in ``apps`` for the days of ``span``, in one
    round trip for all of them.

    Both hashes count the same attempts, but the counters restart when the app is disabled, and days recorded
    before the history existed are only in the counters: so a day shows the larger of the two.
    """
    if not span or not apps:
        return [[] for _ in apps]
    history_keys = [keys.health_history(app_id, day.isoformat()) for app_id, _ in apps for day in span]
    counter_keys = [keys.integration_health(app_id, organization_id, day.isoformat())
                    for app_id, organization_id in apps for day in span]
    flat = client.eval(_READ_HISTORY, 2 * len(history_keys), *history_keys, *counter_keys)
    days = [counts_of(flat[index:index + 4]) for index in range(0, len(flat), 4)]
    return [days[index:index + len(span)] for index in range(0, len(days), len(span))]


def counts_of(values: list) -> dict[str, int]:
    """Turn one day's HMGET answer into ``{field: count}``."""
    return {field: int(value or 0) for field, value in zip(FIELDS.values(), values)}


def is_failing_day(counts: dict[str, int]) -> bool:
    """A day fails when it had an error, timeout or fatal answer and no success."""
    failures = counts["error_count"] + counts["timeout_count"] + counts["fatal_count"]
    return failures > 0 and counts["success_count"] == 0


class IntegrationRequestBuffer:
    """One app's outcome counters, one Redis hash per UTC day, kept ``keys.HEALTH_DAYS`` days."""

    def __init__(self, client: redis.Redis, app_id: int, organization_id: int):
        self.client = client
        self.app_id = app_id
        self.organization_id = organization_id

    def _key(self, day: date) -> str:
        return keys.integration_health(self.app_id, self.organization_id, day.isoformat())

    def record(self, kind: str, day: date, pipe) -> None:
        """Add one ``kind`` outcome on ``day`` to ``pipe`` (the caller executes it with the log write).

        The day's counter and its display history both count it, in the same writes (a pipeline or a
        WriteBatch): no extra round trip.
        """
        for key in (self._key(day), keys.health_history(self.app_id, day.isoformat())):
            pipe.hincrby(key, FIELDS[kind], 1)
            pipe.expire(key, keys.HEALTH_DAYS * 24 * 3600)

    def daily_counts(self, days: int, today: date) -> list[tuple[date, dict[str, int]]]:
        """Return ``days`` days of counts ending with ``today``, oldest first, in one round trip."""
        span = [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]
        return list(zip(span, read_counts(self.client, [self._key(day) for day in span])))

    def clear(self, today: date) -> None:
        """Restart broken detection: delete the counters (the display history stays for the charts)."""
        self.client.delete(*(self._key(today - timedelta(days=offset)) for offset in range(keys.HEALTH_DAYS + 1)))

    def delete_all(self, today: date) -> None:
        """Delete the counters and the display history (the app is gone)."""
        days = [(today - timedelta(days=offset)).isoformat() for offset in range(keys.HEALTH_DAYS + 1)]
        self.client.delete(*(keys.integration_health(self.app_id, self.organization_id, day) for day in days),
                           *(keys.health_history(self.app_id, day) for day in days))

    def failing_streak(self, today: date, days: int = keys.HEALTH_DAYS) -> int:
        """Return how many days in a row, ending today, have failed (0 if today has not)."""
        start = failing_since(self.daily_counts(days, today))
        return (today - start).days + 1 if start else 0

    def broken_reason(self, today: date, range_days: int, timeout_threshold: int) -> str | None:
        """Return why the app counts as broken (which rule, with the counts), or None if it does not."""
        return broken_reason(self.daily_counts(range_days, today), timeout_threshold)


def failing_since(history: list[tuple[date, dict[str, int]]]) -> date | None:
    """Return the first day of the failing streak that runs up to the last day of ``history``, or None."""
    start = None
    for day, counts in reversed(history):
        if not is_failing_day(counts):
            break
        start = day
    return start


def broken_reason(history: list[tuple[date, dict[str, int]]], timeout_threshold: int) -> str | None:
    """Return why ``history`` (the broken-detection range, oldest first, ending today) makes an app broken."""
    today = history[-1][0]
    fatal = sum(counts["fatal_count"] for _, counts in history)
    if fatal:
        return f"The webhook answered 410 Gone ({fatal} time{'s' if fatal != 1 else ''}), which means the endpoint was removed."
    timeouts_today = history[-1][1]["timeout_count"]
    if timeouts_today >= timeout_threshold:
        return (f"{timeouts_today} requests got no answer today (UTC): they timed out or could not connect, "
                f"at or above the limit of {timeout_threshold} a day.")
    if all(is_failing_day(counts) for _, counts in history):
        errors = sum(counts["error_count"] for _, counts in history)
        timeouts = sum(counts["timeout_count"] for _, counts in history)
        return (f"Every one of the last {len(history)} days ({history[0][0]} to {today}, UTC) had failed requests "
                f"and no successful one: {errors} errors and {timeouts} with no answer in all.")
    return None
