import base64
import json
import os
from datetime import datetime, timedelta, timezone

import pytest
from redis.connection import AbstractConnection

from webapp.core import keys
from webapp.dispatch.request_log import (
    BODY_KEEP, MASK, SentryAppWebhookRequestsBuffer, mask_signature, mask_signatures, mask_signatures_in,
    masked_headers,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def redis(app):
    return app.extensions["redis"]


def add(buffer, code=200, event="issue.created", at=T0, **kwargs):
    kwargs.setdefault("request_id", f"r{at.timestamp()}")
    return buffer.add_request(
        event_type=event, response_code=code, webhook_url="https://r.example/h", organization_id=7,
        duration_ms=12, now=at, **kwargs,
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


def test_one_attempt_is_one_round_trip(redis, monkeypatch):
    """Counted at this client (what it sends), not by the server, which other test processes share."""
    round_trips, pipelined = [], []
    send, pack = AbstractConnection.send_packed_command, AbstractConnection.pack_commands

    def counted_send(connection, command, check_health=True):
        round_trips.append(1)
        return send(connection, command, check_health)

    def counted_pack(connection, commands):
        pipelined.extend(args[0] for args in commands)
        return pack(connection, commands)

    buffer = SentryAppWebhookRequestsBuffer(redis, 1)
    add(buffer, 500)  # the connection is open and its handshake done
    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted_send)
    monkeypatch.setattr(AbstractConnection, "pack_commands", counted_pack)
    add(buffer, 500)
    # LPUSH+LTRIM+EXPIRE on both lists and on the errors' details list, in one pipelined send.
    assert len(round_trips) == 1
    assert sorted(pipelined) == sorted(["LPUSH", "LTRIM", "EXPIRE"] * 3)


HEADERS = {"Content-Type": "application/json", "Request-ID": "a" * 32, "webhook-id": "msg_1",
           "Sentry-Hook-Signature": "s3cr3t-hex", "webhook-signature": "v1,abc="}


def test_each_attempt_keeps_its_details_once_found_by_request_id(redis):
    buffer = SentryAppWebhookRequestsBuffer(redis, 1)
    body = json.dumps({"action": "created", "data": {"issue": {"id": "1"}}})
    add(buffer, 200, request_id="a" * 32, request_headers=HEADERS, request_body=body,
        response_headers={"X-Receiver": "yes"}, response_body="thanks ✓")
    add(buffer, 503, event="issue.resolved", request_id="b" * 32, request_headers=HEADERS, request_body=body,
        response_body="busy")
    ok = buffer.find_request("a" * 32)
    assert ok.entry["response_code"] == 200 and ok.message_id == "msg_1"
    assert ok.body() == body and ok.readable_body() == (json.dumps(json.loads(body), indent=2), True)
    # Stored with the signatures masked: the log never holds a signature a reader could replay.
    assert ok.request_headers == {**HEADERS, "Sentry-Hook-Signature": MASK, "webhook-signature": f"v1,{MASK}"}
    stored = [raw for key in redis.keys("*") if redis.type(key) == b"list" for raw in redis.lrange(key, 0, -1)]
    assert stored and not any(b"s3cr3t-hex" in raw or b"v1,abc=" in raw for raw in stored)
    assert ok.details["response_headers"] == {"X-Receiver": "yes"} and ok.details["response_body"] == "thanks ✓"
    failed = buffer.find_request("b" * 32, "issue.resolved")
    assert failed.entry["response_code"] == 503 and failed.details["response_body"] == "busy"
    # Each record is kept once: a success's with the successes, an error's with the errors.
    assert redis.llen(keys.request_details(1, "issue.created")) == 1
    assert redis.llen(keys.request_details_errors(1, "issue.resolved")) == 1
    assert redis.llen(keys.request_details(1, "issue.resolved")) == 0
    assert buffer.find_request("c" * 32) is None
    assert buffer.find_request("not-a-request-id") is None
    assert SentryAppWebhookRequestsBuffer(redis, 2).find_request("a" * 32) is None  # another app's log


def test_details_are_trimmed_with_the_rows_that_show_them(redis):
    buffer = SentryAppWebhookRequestsBuffer(redis, 1)
    for i in range(130):
        add(buffer, 500 if i < 10 else 200, at=T0 + timedelta(seconds=i), request_id=f"{i:032x}",
            request_headers=HEADERS, request_body="{}")
    assert redis.llen(keys.request_details(1, "issue.created")) == 100
    assert redis.llen(keys.request_details_errors(1, "issue.created")) == 10
    assert 29 * 86400 < redis.ttl(keys.request_details(1, "issue.created")) <= 30 * 86400
    # The ten errors left the all list long ago but are still shown under "errors only", with their details.
    oldest_error = buffer.find_request(f"{0:032x}")
    assert oldest_error.details is not None and oldest_error.body() == "{}"
    assert buffer.find_request(f"{29:032x}") is None  # a success pushed out of the list is gone, details too
    assert buffer.find_request(f"{30:032x}").body() == "{}"


def test_a_body_too_large_to_keep_whole_keeps_its_beginning(redis):
    buffer = SentryAppWebhookRequestsBuffer(redis, 1)
    # Random text barely compresses: past BODY_KEEP once packed, so only its beginning is kept.
    big = json.dumps({"data": base64.b64encode(os.urandom(BODY_KEEP)).decode()})
    add(buffer, 200, request_id="d" * 32, request_headers=HEADERS, request_body=big)
    logged = buffer.find_request("d" * 32)
    assert logged.body() is None
    text, whole = logged.readable_body()
    assert not whole and big.startswith(text) and len(text) == 4096
    record = redis.lindex(keys.request_details(1, "issue.created"), 0)
    assert len(record) < 6000  # the bound: no record grows with its body
    compressible = json.dumps({"data": "x" * 200_000})
    add(buffer, 200, request_id="e" * 32, request_headers=HEADERS, request_body=compressible)
    assert buffer.find_request("e" * 32).body() == compressible
    assert len(redis.lindex(keys.request_details(1, "issue.created"), 0)) <= BODY_KEEP + 2048


def test_status_class_filter(redis):
    buffer = SentryAppWebhookRequestsBuffer(redis, 1)
    timeout = {"kind": "timeout", "message": "Timed out", "hint": "h"}
    refused = {"kind": "refused", "message": "Connection refused", "hint": "h"}
    blocked = {"kind": "blocked", "message": "Blocked", "hint": "h"}
    for i, (code, failure) in enumerate([(200, None), (404, None), (503, None), (0, timeout), (0, refused),
                                         (302, None), (204, None), (0, blocked)]):
        add(buffer, code, at=T0 + timedelta(seconds=i), failure=failure)
    def shown(status):
        return [(e["response_code"], (e.get("failure") or {}).get("kind")) for e in buffer.get_requests(status=status)]

    codes = {status: shown(status) for status in ("2xx", "4xx", "5xx", "timeout", "other")}
    assert codes == {"2xx": [(204, None), (200, None)], "4xx": [(404, None)], "5xx": [(503, None)],
                     # no answer, whatever kept it (as health counts it); a blocked destination is an error
                     "timeout": [(0, "refused"), (0, "timeout")], "other": [(0, "blocked"), (302, None)]}
    assert buffer.get_requests("issue.resolved", status="4xx") == []


def test_signature_values_of_entries_stored_unmasked_are_masked_on_read():
    shown = masked_headers(HEADERS)
    assert ("Sentry-Hook-Signature", MASK, True) in shown and ("webhook-signature", "v1," + MASK, True) in shown
    assert ("webhook-id", "msg_1", False) in shown
    text = mask_signatures_in(json.dumps(HEADERS, indent=1)[:-20])  # cut short, as the API's copy may be
    assert "s3cr3t-hex" not in text and "v1,abc=" not in text and '"webhook-id": "msg_1"' in text


def test_mask_signature_keeps_only_the_schemes():
    assert mask_signature("v1,AAAA= v1,BBBB=") == f"v1,{MASK} v1,{MASK}"
    assert mask_signature("sha256=deadbeef") == f"sha256={MASK}"
    assert mask_signature("deadbeef" * 8) == MASK
    assert mask_signature("") == MASK
    headers = mask_signatures({"X-Custom-Signature": "t=1,v1=abc", "X-Other": "kept"})
    assert headers == {"X-Custom-Signature": f"t={MASK}", "X-Other": "kept"}
