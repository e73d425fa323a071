from datetime import datetime, timedelta, timezone

import pytest

from webapp import keys
from webapp.dispatch.request_log import SentryAppWebhookRequestsBuffer

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def redis(app):
    return app.extensions["redis"]


def add(buffer, code=200, event="issue.created", at=T0, **kwargs):
    return buffer.add_request(
        event_type=event, response_code=code, webhook_url="https://r.example/h", organization_id=7,
        request_id=f"r{at.timestamp()}", duration_ms=12, now=at, **kwargs,
    )


def test_entries_have_the_spec_fields(redis):
    buffer = SentryAppWebhookRequestsBuffer(redis, 1)
    add(buffer, 200, response_headers={"Sentry-Hook-Error": "err-1", "Sentry-Hook-Project": "p-2"})
    [entry] = buffer.get_requests()
    assert entry["date"] == "2026-11-01T12:00:00.000000Z"
    assert entry.items() >= {"response_code": 200, "webhook_url": "https://r.example/h", "event_type": "issue.created",
                          "organization_id": 7, "duration_ms": 12, "attempt": 1, "error_id": "err-1", "project_id": "p-2"}.items()
    assert "request_body" not in entry  # successes keep no bodies


def test_errors_keep_request_and_response_cut_to_1024(redis):
    buffer = SentryAppWebhookRequestsBuffer(redis, 1)
    add(buffer, 500, request_headers={"A": "b"}, request_body="q" * 5000, response_body="r" * 5000)
    [entry] = buffer.get_requests(errors_only=True)
    assert len(entry["request_body"]) == 1024 and len(entry["response_body"]) == 1024
    assert '"A": "b"' in entry["request_headers"]


def test_each_list_keeps_the_newest_100_and_expires_in_30_days(redis):
    buffer = SentryAppWebhookRequestsBuffer(redis, 1)
    for i in range(130):
        add(buffer, 0 if i % 2 else 200, at=T0 + timedelta(seconds=i))
    assert redis.llen(keys.request_log(1, "issue.created")) == 100
    assert redis.llen(keys.request_log_errors(1, "issue.created")) == 65
    assert 29 * 86400 < redis.ttl(keys.request_log(1, "issue.created")) <= 30 * 86400
    entries = buffer.get_requests()
    assert len(entries) == 100
    assert entries[0]["date"] == (T0 + timedelta(seconds=129)).isoformat(timespec="microseconds").replace("+00:00", "Z")


def test_reading_merges_event_types_newest_first_and_filters(redis):
    buffer = SentryAppWebhookRequestsBuffer(redis, 1)
    add(buffer, 200, "issue.created", T0)
    add(buffer, 404, "event_alert.triggered", T0 + timedelta(seconds=1))
    add(buffer, 0, "issue.resolved", T0 + timedelta(seconds=2))
    add(buffer, 200, "issue.created", T0 + timedelta(seconds=3))
    SentryAppWebhookRequestsBuffer(redis, 2).add_request(
        event_type="issue.created", response_code=500, webhook_url="x", organization_id=1, request_id="o", duration_ms=1
    )
    assert [e["event_type"] for e in buffer.get_requests()] == ["issue.created", "issue.resolved", "event_alert.triggered", "issue.created"]
    assert [e["response_code"] for e in buffer.get_requests(errors_only=True)] == [0, 404]
    assert [e["response_code"] for e in buffer.get_requests("issue.created")] == [200, 200]
    assert [e["response_code"] for e in buffer.get_requests("issue.created", errors_only=True)] == []
    after = (T0 + timedelta(seconds=1)).isoformat(timespec="microseconds").replace("+00:00", "Z")
    assert [e["response_code"] for e in buffer.get_requests(after=after)] == [200, 0]


def test_one_attempt_is_one_round_trip(redis):
    buffer = SentryAppWebhookRequestsBuffer(redis, 1)
    before = redis.info("stats")["total_commands_processed"]
    add(buffer, 500)
    # LPUSH+LTRIM+EXPIRE on both lists, pipelined; INFO itself counts once.
    assert redis.info("stats")["total_commands_processed"] - before == 7
