"""The request log: a Redis ring buffer of every webhook attempt, per app and event type (SPEC section 6)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

import redis

from .. import clock, keys
from .events import EVENT_TYPES

FIELD_LIMIT = 1024


def is_error_code(code: int) -> bool:
    return code == 0 or code >= 300


def _cut(text: str) -> str:
    return text if len(text) <= FIELD_LIMIT else text[:FIELD_LIMIT]


class SentryAppWebhookRequestsBuffer:
    """Write and read one app's request log."""

    def __init__(self, client: redis.Redis, app_id: int):
        self.client = client
        self.app_id = app_id

    def add_request(
        self,
        *,
        event_type: str,
        response_code: int,
        webhook_url: str,
        organization_id: int,
        request_id: str,
        duration_ms: int,
        attempt: int = 1,
        response_headers: dict[str, str] | None = None,
        request_headers: dict[str, str] | None = None,
        request_body: str = "",
        response_body: str = "",
        extra: dict | None = None,
        now: datetime | None = None,
        pipe=None,
    ) -> dict:
        """Record one attempt and return the entry written; with ``pipe``, the caller executes the pipeline."""
        response_headers = response_headers or {}
        entry = {
            "date": (now or clock.now()).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "response_code": response_code,
            "webhook_url": webhook_url,
            "event_type": event_type,
            "organization_id": organization_id,
            "request_id": request_id,
            "duration_ms": duration_ms,
            "attempt": attempt,
            **(extra or {}),
        }
        for header, name in (("Sentry-Hook-Error", "error_id"), ("Sentry-Hook-Project", "project_id")):
            value = _header(response_headers, header)
            if value:
                entry[name] = _cut(value)
        is_error = is_error_code(response_code)
        if is_error:
            entry["request_headers"] = _cut(json.dumps(request_headers or {}, indent=1))
            entry["request_body"] = _cut(request_body)
            entry["response_body"] = _cut(response_body)
        encoded = json.dumps(entry)
        targets = [keys.request_log(self.app_id, event_type)]
        if is_error:
            targets.append(keys.request_log_errors(self.app_id, event_type))
        own_pipe = pipe is None
        pipe = self.client.pipeline(transaction=False) if own_pipe else pipe
        for key in targets:
            pipe.lpush(key, encoded)
            pipe.ltrim(key, 0, keys.REQUEST_LOG_SIZE - 1)
            pipe.expire(key, keys.REQUEST_LOG_TTL)
        if own_pipe:
            pipe.execute()
        return entry

    def get_requests(
        self, event_type: str | None = None, errors_only: bool = False, after: str | None = None
    ) -> list[dict]:
        """Return at most REQUEST_LOG_SIZE entries, newest first, optionally newer than the date ``after``."""
        event_types: Iterable[str] = [event_type] if event_type else EVENT_TYPES
        key_of = keys.request_log_errors if errors_only else keys.request_log
        pipe = self.client.pipeline(transaction=False)
        for name in event_types:
            pipe.lrange(key_of(self.app_id, name), 0, keys.REQUEST_LOG_SIZE - 1)
        raws = [raw for chunk in pipe.execute() for raw in chunk]
        # Sort on the date without parsing every entry: up to 1,500 are read, at most 100 are shown.
        dated = [(_date_of(raw), raw) for raw in raws]
        if after:
            dated = [(date, raw) for date, raw in dated if date > after]
        dated.sort(key=lambda pair: pair[0], reverse=True)
        return [json.loads(raw) for _, raw in dated[: keys.REQUEST_LOG_SIZE]]


_DATE_PREFIX = b'{"date": "'
_DATE_END = len(_DATE_PREFIX) + len("2026-11-01T12:00:00.000000Z")


def _date_of(raw: bytes) -> str:
    """Return an entry's date; ``add_request`` writes it first, so it is read off the front of the JSON."""
    if raw.startswith(_DATE_PREFIX) and raw[_DATE_END - 1:_DATE_END] == b"Z":
        return raw[len(_DATE_PREFIX):_DATE_END].decode()
    return json.loads(raw)["date"]


def _header(headers: dict[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None
