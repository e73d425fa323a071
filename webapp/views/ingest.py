"""Sentry's ingestion endpoints, for applications using the official sentry-sdk.

A request is refused as early as it can be: its project, key, the key's state and its quota come before anything
is decompressed or parsed (only the envelope's first line, when the key is there), so a request without a valid
key costs about as little as one with no body.
"""

from __future__ import annotations

import hmac
import logging
import time

from flask import Blueprint, current_app, jsonify, request
from redis.exceptions import RedisError

from ..alerts.ingest import (
    MISSING_KEY, IngestError, decode_body, parse_envelope, parse_event, public_key_from, public_key_from_dsn,
    read_envelope_header,
)
from ..alerts.ingest_outcomes import Outcomes, add_outcomes, count_outcomes
from ..apps.project_keys import effective_rate_limit
from ..core import keys
from ..core.cache import get_project_with_keys
from ..core.extensions import csrf
from ..core.input_guard import MAX_ROW_ID
from ..core.redis_store import get_redis
from ..dispatch.intake import queue_event, store_now
from ..dispatch.signing import USER_AGENT_PREFIX

logger = logging.getLogger(__name__)

bp = Blueprint("ingest", __name__)

WRONG_KEY = "Unknown project or wrong project key; check the DSN."


@bp.before_request
def allow_bodies_up_to_the_ingest_limit():
    # Ingestion checks the size itself (INGEST_MAX_BYTES, answered in Sentry's shape), not the app-wide limit.
    request.max_content_length = current_app.config["INGEST_MAX_BYTES"] + 1


@bp.route("/api/<number:project_id>/envelope/", methods=["POST"])
@csrf.exempt
def envelope(project_id: int):
    outcomes = Outcomes()
    try:
        project, project_keys = _project_or_403(project_id, outcomes)
        raw = _read_raw_body()
        public_key = public_key_from(request.headers, request.args) or _public_key_in_envelope(raw)
        key = _authenticate(project_keys, public_key, outcomes)
        refuse_if_over_quota(project, key)
        parsed = parse_envelope(_decompress(raw))
        # One event per envelope, as Sentry's Relay takes it: an envelope is one event and its extras, so
        # a small body cannot carry thousands of events past the quota. The others are dropped unread, counted.
        event, outcomes.dropped = parsed.first_event(current_app.config["INGEST_MAX_BYTES"])
        if event is None:
            count_outcomes(outcomes)
            return jsonify(id=parsed.headers.get("event_id"))
        take_quota(project, key)
        event_id = _accept(project, key, event, outcomes)
    except IngestError as exc:
        return _refusal(exc, outcomes)
    return jsonify(id=event_id)


@bp.route("/api/<number:project_id>/store/", methods=["POST"])
@csrf.exempt
def store(project_id: int):
    outcomes = Outcomes()
    try:
        project, project_keys = _project_or_403(project_id, outcomes)
        raw = _read_raw_body()
        key = _authenticate(project_keys, public_key_from(request.headers, request.args), outcomes)
        refuse_if_over_quota(project, key)
        event = parse_event(_decompress(raw), "event", current_app.config["INGEST_MAX_BYTES"])
        take_quota(project, key)
        event_id = _accept(project, key, event, outcomes)
    except IngestError as exc:
        return _refusal(exc, outcomes)
    return jsonify(id=event_id)


def _refusal(exc: IngestError, outcomes: Outcomes):
    if exc.status == 429:
        outcomes.rate_limited = 1
    else:
        outcomes.refused = 1
    count_outcomes(outcomes)
    response = jsonify(detail=exc.detail)
    response.status_code = exc.status
    response.headers.update(exc.headers)
    return response


def refuse_if_over_quota(project, key) -> None:
    """Refuse (429) a key that has used up this minute's quota already, before its body is parsed; count nothing.

    As Relay keeps the rate limits it has answered with: once a key is over, its next requests cost a lookup.
    """
    limit, counter, now = _quota_of(project, key)
    try:
        used = int(get_redis().get(counter) or 0)
    except RedisError:
        return  # take_quota logs the unchecked quota, once an event
    if used >= limit:
        raise _over_quota(limit, now)


def take_quota(project, key) -> None:
    """Count one event against the key's quota for this minute; refuse it (429) past the key's limit.

    The limit is the key's own, else the project's per-key setting, else INGEST_RATE_LIMIT. The answer carries
    ``Retry-After`` and Sentry's ``X-Sentry-Rate-Limits``, so the SDK stops sending until the next minute.
    Without Redis the event is let through: a quota must not lose events.
    """
    limit, counter, now = _quota_of(project, key)
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.incr(counter)
        pipe.expire(counter, 120)
        count, _ = pipe.execute()
    except RedisError as exc:
        logger.warning("ingest.quota_unchecked project=%s key=%s reason=%s", project.id, key.id,
                       exc.__class__.__name__)
        return
    if count > limit:
        raise _over_quota(limit, now)


def _quota_of(project, key) -> tuple[int, str, float]:
    """Return the key's limit a minute, the Redis counter of this minute and the time now."""
    now = time.time()
    return (effective_rate_limit(key, project, current_app.config["INGEST_RATE_LIMIT"]),
            keys.ingest_quota(key.id, int(now) // 60 * 60), now)


def _over_quota(limit: int, now: float) -> IngestError:
    retry_after = max(1, int(int(now) // 60 * 60 + 60 - now))
    return IngestError(429, f"Rate limited: this project's key may send {limit} events a minute; "
                            f"retry in {retry_after} s.",
                       headers={"Retry-After": str(retry_after),
                                "X-Sentry-Rate-Limits": f"{retry_after}::key:project_quota"})


def _read_raw_body() -> bytes:
    """Return the body as sent (compressed or not), refusing a webhook loop (400) and a body over the limit (413)."""
    if request.headers.get("User-Agent", "").startswith(USER_AGENT_PREFIX):
        # An app's webhook URL points at this ingestion: each delivery would store an event that sends another.
        raise IngestError(400, "Refused: this request is a Hookline webhook delivery. An app's webhook URL points "
                               "at Hookline's own ingestion, which would send webhooks in a loop; change that URL.")
    limit = current_app.config["INGEST_MAX_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        raise IngestError(413, f"The body is larger than {limit} bytes.")
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise IngestError(413, f"The body is larger than {limit} bytes.")
    return raw


def _decompress(raw: bytes) -> bytes:
    return decode_body(raw, request.headers.get("Content-Encoding", ""), current_app.config["INGEST_MAX_BYTES"] * 4)


def _public_key_in_envelope(raw: bytes) -> str | None:
    """Return the key of the DSN in the envelope's header line, reading (and decompressing) that line only."""
    return public_key_from_dsn(read_envelope_header(raw, request.headers.get("Content-Encoding", "")))


def _project_or_403(project_id: int, outcomes: Outcomes):
    """Return the project and its keys (one Redis round trip once cached, no SQL) before the body is read: a
    request for no project costs little."""
    if project_id > MAX_ROW_ID:  # no such row, and more than the database's integers hold
        raise IngestError(403, WRONG_KEY)
    project, project_keys = get_project_with_keys(project_id)
    if project is None:
        raise IngestError(403, WRONG_KEY)
    outcomes.project_id = project.id
    return project, project_keys


def _authenticate(project_keys, public_key: str | None, outcomes: Outcomes):
    """Return the project's key named ``public_key``: 401 without one, 403 if it is not the project's or disabled."""
    if not public_key:
        raise IngestError(401, MISSING_KEY)
    offered = public_key.encode("utf-8", "replace")
    # Every key is compared, each in constant time; the keys come from the cache (no SQL once cached).
    matching = [key for key in project_keys if hmac.compare_digest(key.public_key.encode(), offered)]
    if not matching:
        raise IngestError(403, WRONG_KEY)
    key = matching[0]
    outcomes.key_id = key.id
    if not key.is_active:
        raise IngestError(403, "This project key is disabled. Enable it on the project page, or send with another "
                               "of the project's keys.")
    return key


def _accept(project, key, raw_event: dict, outcomes: Outcomes) -> str:
    """Hand the event to the workers, counted in the same MULTI, and return its id.

    As Sentry does, the event records the key it came with (``key_id``), and a ``user.ip_address`` of
    ``{{auto}}`` (what browser SDKs send) becomes the sender's address (behind proxies: TRUSTED_PROXIES).
    Without Redis, store it in this request instead.
    """
    raw_event["key_id"] = str(key.id)
    user = raw_event.get("user")
    if isinstance(user, dict) and user.get("ip_address") == "{{auto}}":
        raw_event["user"] = {**user, "ip_address": request.remote_addr}
    outcomes.accepted = 1
    try:
        return queue_event(project.id, raw_event, also=lambda pipe: add_outcomes(pipe, outcomes))
    except RedisError as exc:
        logger.warning("ingest.stored_inline project=%s reason=%s", project.id, exc.__class__.__name__)
        event_id = store_now(project, raw_event)
        count_outcomes(outcomes)
        return event_id
