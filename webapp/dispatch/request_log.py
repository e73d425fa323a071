"""The request log: a Redis ring buffer of every webhook attempt, per app and event type (SPEC section 6).

Each attempt is a compact entry (what the table lists and polls) and a details record (what the inspector
shows and a resend sends: headers, the whole body, the response), both trimmed to the newest 100 per event type.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import redis

from ..core import clock, keys
from .events import EVENT_TYPES

FIELD_LIMIT = 1024
# A request body is kept whole: as it is up to PLAIN_BODY_LIMIT characters (most webhooks; compressing costs more
# than it saves there), else compressed (zlib, then base64) if that takes at most BODY_KEEP characters: about 100
# to 200 KB of JSON (a 150 KB event with 300 frames takes 31 KB). A larger one keeps its first BODY_PREVIEW
# characters, to read, not to resend. Past RAW_BODY_LIMIT no JSON compresses enough, so it is not tried.
PLAIN_BODY_LIMIT = 2048
BODY_KEEP = 32 * 1024
BODY_PREVIEW = 4 * 1024
RAW_BODY_LIMIT = 16 * BODY_KEEP
HEADERS_LIMIT = 2048  # characters of a response's headers kept (a receiver may send any number)
REQUEST_ID = re.compile(r"[0-9a-f]{32}")  # Request-ID: uuid4 hex, one per attempt
MASK = "••••"
# A signature value's scheme (``v1,`` or ``sha256=``), the one part of it the log keeps.
SIGNATURE_SCHEME = re.compile(r"^[A-Za-z0-9_-]{1,16}[=,]")
# "timeout" (kept as the filter's value in URLs) is every attempt that got no answer, whatever kept it from one:
# the same attempts the health chart, the broken detection and the badge count as "no answer".
STATUS_CLASSES = {"2xx": "2xx success", "4xx": "4xx", "5xx": "5xx", "timeout": "no answer", "other": "other errors"}


def is_error_code(code: int) -> bool:
    return code == 0 or code >= 300


def status_class(entry: dict) -> str:
    """Return the entry's STATUS_CLASSES key: "timeout" is no answer (timed out, refused, not found, TLS, closed,
    invalid), counted as health counts it; "other" is a 3xx or a destination the address guard blocked."""
    code = entry["response_code"]
    for name, low in (("2xx", 200), ("4xx", 400), ("5xx", 500)):
        if low <= code < low + 100:
            return name
    failure = entry.get("failure")
    if code == 0 and (failure is None or failure["kind"] != "blocked"):
        return "timeout"
    return "other"


def _cut(text: str) -> str:
    return text if len(text) <= FIELD_LIMIT else text[:FIELD_LIMIT]


def _cut_headers(headers: dict[str, str]) -> dict[str, str]:
    kept, size = {}, 0
    for name, value in headers.items():
        size += len(name) + len(value) + 6
        if size > HEADERS_LIMIT:
            break
        kept[name] = value
    return kept


def _pack_body(body: str) -> dict:
    """Return the body as a details record keeps it: whole (compressed if large) if it fits, else its beginning."""
    if len(body) <= PLAIN_BODY_LIMIT:
        return {"body": body}
    if len(body) <= RAW_BODY_LIMIT:
        # Level 1: the fastest, and JSON still shrinks five to ten times.
        packed = base64.b64encode(zlib.compress(body.encode("utf-8"), 1)).decode("ascii")
        if len(packed) <= BODY_KEEP:
            return {"body_z": packed}
    return {"body_preview": body[:BODY_PREVIEW], "body_chars": len(body)}


def is_signature_header(name: str) -> bool:
    """Say whether a header carries a signature (Sentry-Hook-Signature, webhook-signature, any *signature*)."""
    return "signature" in name.lower()


def mask_signature(value: str) -> str:
    """Return a signature value with only its schemes kept: ``v1,<base64> v1,<base64>`` → ``v1,•••• v1,••••``.

    A valid signature is never stored: anyone who could read it could replay the message to the receiver.
    """
    masked = []
    for part in value.split():
        scheme = SIGNATURE_SCHEME.match(part)
        masked.append((scheme.group(0) if scheme else "") + MASK)
    return " ".join(masked) or MASK


def mask_signatures(headers: dict[str, str]) -> dict[str, str]:
    """Return the headers with every signature value masked (see ``mask_signature``)."""
    return {name: mask_signature(value) if is_signature_header(name) else value for name, value in headers.items()}


def masked_headers(headers: dict[str, str]) -> list[tuple[str, str, bool]]:
    """Return (name, value, masked) per header; signature values are masked (also those of entries stored before
    the log masked them when writing)."""
    return [(name, mask_signature(value), True) if is_signature_header(name) else (name, value, False)
            for name, value in headers.items()]


def mask_signatures_in(text: str) -> str:
    """Mask the signature values in a JSON text of headers (possibly cut short) of an entry stored unmasked."""
    return re.sub(r'("[^"]*(?i:signature)[^"]*":\s*")([^"]*)', lambda match: match.group(1) + mask_signature(
        match.group(2)), text)


@dataclass
class LoggedRequest:
    """One logged attempt: its entry and, unless it was logged before they were kept, its details record."""

    entry: dict
    details: dict | None

    @property
    def request_id(self) -> str:
        return self.entry["request_id"]

    @property
    def message_id(self) -> str | None:
        return self.entry.get("message_id") or self.request_headers.get("webhook-id")

    @property
    def request_headers(self) -> dict[str, str]:
        return (self.details or {}).get("request_headers") or {}

    def body(self) -> str | None:
        """Return the whole request body as sent, or None when it was not kept whole."""
        details = self.details or {}
        if "body" in details:
            return details["body"]
        packed = details.get("body_z")
        return zlib.decompress(base64.b64decode(packed)).decode("utf-8") if packed else None

    def readable_body(self) -> tuple[str, bool]:
        """Return the body to show (JSON indented by 2) and whether it is all of it."""
        body = self.body()
        if body is None:
            return (self.details or {}).get("body_preview") or self.entry.get("request_body", ""), False
        try:
            return json.dumps(json.loads(body), indent=2), True
        except ValueError:
            return body, True


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
        max_attempts: int = 1,
        response_headers: dict[str, str] | None = None,
        request_headers: dict[str, str] | None = None,
        request_body: str = "",
        response_body: str = "",
        failure: dict | None = None,
        extra: dict | None = None,
        now: datetime | None = None,
        pipe=None,
    ) -> dict:
        """Record one attempt and return the entry written; with ``pipe`` (a pipeline or a WriteBatch), the caller
        executes it.

        1. The entry goes on the event type's list, and on its errors list if it failed.
        2. Its details record goes on the details list of successes or of errors, so it is kept once.
        """
        response_headers = response_headers or {}
        request_headers = mask_signatures(request_headers or {})
        entry = {
            "date": (now or clock.now()).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "response_code": response_code,
            "webhook_url": webhook_url,
            "event_type": event_type,
            "organization_id": organization_id,
            "request_id": request_id,
            "duration_ms": duration_ms,
            "attempt": attempt,
            "max_attempts": max_attempts,
            **(extra or {}),
        }
        message_id = _header(request_headers, "webhook-id")
        if message_id:
            entry["message_id"] = message_id
        if failure:
            entry["failure"] = failure
        for header, name in (("Sentry-Hook-Error", "error_id"), ("Sentry-Hook-Project", "project_id")):
            value = _header(response_headers, header)
            if value:
                entry[name] = _cut(value)
        is_error = is_error_code(response_code)
        if is_error:  # what the API's list shows of a failed attempt
            entry["request_headers"] = _cut(json.dumps(request_headers, indent=1))
            entry["request_body"] = _cut(request_body)
            entry["response_body"] = _cut(response_body)
        details = {
            "request_id": request_id,  # first, so a record is found by its prefix without parsing the others
            "request_headers": request_headers,
            **_pack_body(request_body),
            "response_headers": _cut_headers(response_headers),
            "response_body": _cut(response_body),
        }
        writes = [(keys.request_log(self.app_id, event_type), json.dumps(entry))]
        if is_error:
            writes.append((keys.request_log_errors(self.app_id, event_type), writes[0][1]))
        details_key = keys.request_details_errors if is_error else keys.request_details
        # UTF-8 rather than \u escapes: a receiver's non-ASCII text costs 2-3 bytes a character, not 6.
        writes.append((details_key(self.app_id, event_type), json.dumps(details, ensure_ascii=False)))
        own_pipe = pipe is None
        pipe = self.client.pipeline(transaction=False) if own_pipe else pipe
        for key, value in writes:
            pipe.lpush(key, value)
            pipe.ltrim(key, 0, keys.REQUEST_LOG_SIZE - 1)
            pipe.expire(key, keys.REQUEST_LOG_TTL)
        if own_pipe:
            pipe.execute()
        return entry

    def get_requests(
        self, event_type: str | None = None, errors_only: bool = False, after: str | None = None,
        status: str | None = None,
    ) -> list[dict]:
        """Return at most REQUEST_LOG_SIZE entries, newest first, optionally newer than the date ``after``.

        ``status`` keeps one of STATUS_CLASSES; every class but 2xx is read from the errors lists, which
        reach further back.
        """
        event_types: Iterable[str] = [event_type] if event_type else EVENT_TYPES
        key_of = keys.request_log_errors if errors_only or status not in (None, "2xx") else keys.request_log
        pipe = self.client.pipeline(transaction=False)
        for name in event_types:
            pipe.lrange(key_of(self.app_id, name), 0, keys.REQUEST_LOG_SIZE - 1)
        raws = [raw for chunk in pipe.execute() for raw in chunk]
        # Sort on the date without parsing every entry: up to 1,500 are read, at most 100 are shown.
        dated = [(_date_of(raw), raw) for raw in raws]
        if after:
            dated = [(date, raw) for date, raw in dated if date > after]
        dated.sort(key=lambda pair: pair[0], reverse=True)
        if status is None:
            return [json.loads(raw) for _, raw in dated[: keys.REQUEST_LOG_SIZE]]
        entries = (json.loads(raw) for _, raw in dated)
        return [entry for entry in entries if status_class(entry) == status][: keys.REQUEST_LOG_SIZE]

    def find_request(self, request_id: str, event_type: str | None = None) -> LoggedRequest | None:
        """Return the logged attempt whose Request-ID is ``request_id`` (in ``event_type``'s lists if given), or None.

        Two round trips: the entries (found by a plain text match, parsed once found), then the one details
        list that holds its record.
        """
        if not REQUEST_ID.fullmatch(request_id):
            return None
        names = [event_type] if event_type in EVENT_TYPES else EVENT_TYPES
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.lrange(keys.request_log(self.app_id, name), 0, -1)
            pipe.lrange(keys.request_log_errors(self.app_id, name), 0, -1)
        needle = f'"request_id": "{request_id}"'.encode()
        found = (json.loads(raw) for chunk in pipe.execute() for raw in chunk if needle in raw)
        entry = next((entry for entry in found if entry.get("request_id") == request_id), None)
        if entry is None:
            return None
        details_key = keys.request_details_errors if is_error_code(entry["response_code"]) else keys.request_details
        prefix = f'{{"request_id": "{request_id}"'.encode()
        records = self.client.lrange(details_key(self.app_id, entry["event_type"]), 0, -1)
        return LoggedRequest(entry, next((json.loads(raw) for raw in records if raw.startswith(prefix)), None))


def failed_messages_since(client, app_id: int, since: str) -> list[LoggedRequest]:
    """Return the newest attempt of each message (webhook-id) logged since the date ``since`` whose newest attempt
    failed, oldest message first; test alerts left out. Two round trips: every entry, then the failures' records.

    A message's newest attempt decides: one that failed and was then delivered (a retry, a resend) is not failed.
    """
    pipe = client.pipeline(transaction=False)
    for name in EVENT_TYPES:
        pipe.lrange(keys.request_log(app_id, name), 0, -1)
        pipe.lrange(keys.request_log_errors(app_id, name), 0, -1)
    newest: dict[str, dict] = {}
    for raw in (raw for chunk in pipe.execute() for raw in chunk):
        if _date_of(raw) < since:
            continue
        entry = json.loads(raw)
        message_id = entry.get("message_id")
        if message_id and (message_id not in newest or entry["date"] > newest[message_id]["date"]):
            newest[message_id] = entry
    failed = sorted((entry for entry in newest.values() if is_error_code(entry["response_code"])
                     and not entry.get("test")), key=lambda entry: entry["date"])
    if not failed:
        return []
    pipe = client.pipeline(transaction=False)
    for name in EVENT_TYPES:
        pipe.lrange(keys.request_details_errors(app_id, name), 0, -1)
    records = {record["request_id"]: record for chunk in pipe.execute() for record in map(json.loads, chunk)}
    return [LoggedRequest(entry, records.get(entry["request_id"])) for entry in failed]


def log_keys(app_id: int) -> list[str]:
    """Return every key of the app's request log (to delete them with the app)."""
    makers = (keys.request_log, keys.request_log_errors, keys.request_details, keys.request_details_errors)
    return [make(app_id, event_type) for event_type in EVENT_TYPES for make in makers]


_DATE_PREFIX = b'{"date": "'
_DATE_END = len(_DATE_PREFIX) + len("2026-11-01T12:00:00.000000Z")


def raw_date(raw: bytes) -> bytes:
    """Return an entry's date as bytes, to sort and compare without decoding (see ``_date_of``)."""
    if raw.startswith(_DATE_PREFIX) and raw[_DATE_END - 1:_DATE_END] == b"Z":
        return raw[len(_DATE_PREFIX):_DATE_END]
    return json.loads(raw)["date"].encode()


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
