"""IntegrationRequestBuffer and the three broken rules, day by day (UTC)."""

from datetime import date, timedelta

import pytest

from webapp import keys
from webapp.dispatch.health import IntegrationRequestBuffer

TODAY = date(2026, 11, 22)


@pytest.fixture
def buffer(app):
    return IntegrationRequestBuffer(app.extensions["redis"], 5, 9)


def record(buffer, kind, day, times=1):
    pipe = buffer.client.pipeline()
    for _ in range(times):
        buffer.record(kind, day, pipe)
    pipe.execute()


def fail_days(buffer, days, kind="error"):
    for offset in range(days):
        record(buffer, kind, TODAY - timedelta(days=offset))


def check(buffer, threshold=1000):
    return buffer.broken_reason(TODAY, 7, threshold)


def test_counts_per_utc_day_kept_30_days(buffer):
    record(buffer, "success", TODAY, 3)
    record(buffer, "timeout", TODAY)
    record(buffer, "error", TODAY - timedelta(days=1), 2)
    history = buffer.daily_counts(2, TODAY)
    assert history == [
        (TODAY - timedelta(days=1), {"success_count": 0, "error_count": 2, "timeout_count": 0, "fatal_count": 0}),
        (TODAY, {"success_count": 3, "error_count": 0, "timeout_count": 1, "fatal_count": 0}),
    ]
    ttl = buffer.client.ttl(keys.integration_health(5, 9, TODAY.isoformat()))
    assert 29 * 86400 < ttl <= 30 * 86400


def test_seven_failing_days_is_broken(buffer):
    fail_days(buffer, 7)
    reason = check(buffer)
    assert "Every one of the last 7 days (2026-11-16 to 2026-11-22, UTC)" in reason
    assert "7 errors and 0 timeouts" in reason


def test_six_failing_days_is_not_broken_yet(buffer):
    fail_days(buffer, 6)
    assert check(buffer) is None
    assert buffer.failing_streak(TODAY) == 6


def test_six_failing_days_then_a_success_resets(buffer):
    fail_days(buffer, 7)
    record(buffer, "success", TODAY)
    assert check(buffer) is None
    assert buffer.failing_streak(TODAY) == 0


def test_a_day_without_requests_breaks_the_streak(buffer):
    fail_days(buffer, 7)
    buffer.client.delete(keys.integration_health(5, 9, (TODAY - timedelta(days=3)).isoformat()))
    assert check(buffer) is None
    assert buffer.failing_streak(TODAY) == 3


def test_timeouts_today_at_the_threshold(buffer):
    record(buffer, "timeout", TODAY, 4)
    record(buffer, "success", TODAY, 10)
    assert check(buffer, threshold=5) is None
    record(buffer, "timeout", TODAY)
    assert "5 requests timed out or could not connect today" in check(buffer, threshold=5)


def test_one_410_is_broken_at_once(buffer):
    record(buffer, "success", TODAY, 50)
    record(buffer, "fatal", TODAY)
    assert "410 Gone" in check(buffer)


def test_clear_removes_every_day(buffer):
    fail_days(buffer, 10)
    buffer.clear(TODAY)
    assert all(sum(counts.values()) == 0 for _, counts in buffer.daily_counts(30, TODAY))
