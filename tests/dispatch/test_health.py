"""IntegrationRequestBuffer and the three broken rules, day by day (UTC)."""

from datetime import date, timedelta

import pytest
from redis.connection import Connection

from tests.lifecycle import load_app
from webapp.core import clock, keys
from webapp.dispatch.health import IntegrationRequestBuffer, display_history
from webapp.dispatch.webhooks import send_and_save_webhook_request

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
    assert "7 errors and 0 with no answer" in reason


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
    assert "5 requests got no answer today" in check(buffer, threshold=5)


def test_one_410_is_broken_at_once(buffer):
    record(buffer, "success", TODAY, 50)
    record(buffer, "fatal", TODAY)
    assert "410 Gone" in check(buffer)


def test_clear_removes_every_day(buffer):
    fail_days(buffer, 10)
    buffer.clear(TODAY)
    assert all(sum(counts.values()) == 0 for _, counts in buffer.daily_counts(30, TODAY))


def test_clear_restarts_broken_detection_but_the_charts_keep_their_history(buffer):
    record(buffer, "success", TODAY, 2)
    record(buffer, "fatal", TODAY)
    record(buffer, "timeout", TODAY - timedelta(days=29))
    buffer.clear(TODAY)
    assert all(sum(counts.values()) == 0 for _, counts in buffer.daily_counts(30, TODAY))
    [[oldest, *_, today]] = display_history(buffer.client, [(5, 9)], [TODAY - timedelta(days=d) for d in range(29, -1, -1)])
    assert today == {"success_count": 2, "error_count": 0, "timeout_count": 0, "fatal_count": 1}
    assert oldest["timeout_count"] == 1
    assert buffer.client.ttl(keys.health_history(5, TODAY.isoformat())) > 29 * 24 * 3600


def test_delete_all_removes_the_history_too(buffer):
    record(buffer, "success", TODAY)
    buffer.delete_all(TODAY)
    assert display_history(buffer.client, [(5, 9)], [TODAY]) == [[{"success_count": 0, "error_count": 0,
                                                                    "timeout_count": 0, "fatal_count": 0}]]


def test_days_counted_before_the_history_existed_still_show(buffer):
    buffer.client.hset(keys.integration_health(5, 9, TODAY.isoformat()), mapping={"success_count": 4, "error_count": 1})
    [[counts]] = display_history(buffer.client, [(5, 9)], [TODAY])
    assert (counts["success_count"], counts["error_count"]) == (4, 1)


def test_an_attempt_is_still_one_round_trip_for_log_and_health(app, pager, receiver, monkeypatch):
    """The history is written in the attempt's one pipeline: no extra round trip on the delivery path."""
    receiver.answer(200)
    sentry_app = load_app(app, pager)
    round_trips = []
    send_packed_command = Connection.send_packed_command

    def counted(connection, command, check_health=True):
        # redis-py's own PING on a connection idle past health_check_interval is not the delivery's round trip
        if b"PING" not in (command if isinstance(command, bytes) else b"".join(command)):
            round_trips.append(command)
        return send_packed_command(connection, command, check_health)

    monkeypatch.setattr(Connection, "send_packed_command", counted)
    with app.app_context():
        send_and_save_webhook_request(sentry_app, "issue.created", {"action": "created", "data": {}})
    monkeypatch.undo()
    assert len(round_trips) == 1
    history = app.extensions["redis"].hgetall(keys.health_history(pager, clock.today().isoformat()))
    assert history == {b"success_count": b"1"}
