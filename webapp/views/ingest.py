"""Sentry's ingestion endpoints, for applications using the official sentry-sdk."""

from __future__ import annotations

import hmac
import logging
import time

from flask import Blueprint, current_app, jsonify, request
from redis.exceptions import RedisError

from .. import keys
from ..dispatch.intake import queue_event, store_now
from ..dispatch.signing import USER_AGENT_PREFIX
from ..cache import get_from_cache
from ..extensions import csrf
from ..ingest import IngestError, decode_body, parse_envelope, parse_json_object, public_key_from
from ..models import Project
from ..redis_store import get_redis

logger = logging.getLogger(__name__)

bp = Blueprint("ingest", __name__)

MAX_PROJECT_ID = 2**63 - 1


@bp.before_request
def allow_bodies_up_to_the_ingest_limit():
    # Ingestion checks the size itself (INGEST_MAX_BYTES, answered in Sentry's shape), not the app-wide limit.
    request.max_content_length = current_app.config["INGEST_MAX_BYTES"] + 1


@bp.route("/api/<int:project_id>/envelope/", methods=["POST"])
@csrf.exempt
def envelope(project_id: int):
    try:
        body = _read_body()
        parsed = parse_envelope(body)
        project = _authenticate(project_id, public_key_from(request.headers, request.args, parsed.headers))
        # One event per envelope, as Sentry's Relay takes it: an envelope is one event and its extras, so
        # a small body cannot carry thousands of events past the quota.
        events = parsed.events()[:1]
        if events:
            take_quota(project)
        event_ids = [_accept(project, event) for event in events]
    except IngestError as exc:
        return _refusal(exc)
    return jsonify(id=event_ids[0] if event_ids else parsed.headers.get("event_id"))


@bp.route("/api/<int:project_id>/store/", methods=["POST"])
@csrf.exempt
def store(project_id: int):
    try:
        body = _read_body()
        project = _authenticate(project_id, public_key_from(request.headers, request.args))
        event = parse_json_object(body, "event")
        take_quota(project)
        event_id = _accept(project, event)
    except IngestError as exc:
        return _refusal(exc)
    return jsonify(id=event_id)


def _refusal(exc: IngestError):
    response = jsonify(detail=exc.detail)
    response.status_code = exc.status
    response.headers.update(exc.headers)
    return response


def take_quota(project) -> None:
    """Count one event against the project's key for this minute; refuse it (429) past INGEST_RATE_LIMIT.

    The answer carries ``Retry-After`` and Sentry's ``X-Sentry-Rate-Limits``, so the SDK stops sending until
    the next minute. Without Redis the event is let through: a quota must not lose events.
    """
    limit = current_app.config["INGEST_RATE_LIMIT"]
    now = time.time()
    minute = int(now) // 60 * 60
    key = keys.ingest_quota(project.id, minute)
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, 120)
        count, _ = pipe.execute()
    except RedisError as exc:
        logger.warning("ingest.quota_unchecked project=%s reason=%s", project.id, exc.__class__.__name__)
        return
    if count > limit:
        retry_after = max(1, int(minute + 60 - now))
        raise IngestError(429, f"Rate limited: this project's key may send {limit} events a minute; "
                               f"retry in {retry_after} s.",
                          headers={"Retry-After": str(retry_after),
                                   "X-Sentry-Rate-Limits": f"{retry_after}::key:project_quota"})


def _read_body() -> bytes:
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
    return decode_body(raw, request.headers.get("Content-Encoding", ""), limit * 4)


def _authenticate(project_id: int, public_key: str | None):
    if not public_key:
        raise IngestError(401, "Missing sentry_key: send X-Sentry-Auth or ?sentry_key= with the project's DSN key.")
    if project_id > MAX_PROJECT_ID:  # no such row, and more than the database's integers hold
        raise IngestError(403, "Unknown project or wrong project key; check the DSN.")
    project = get_from_cache(Project, project_id)  # no SQL on the hot path once the project is cached
    if project is None or not hmac.compare_digest(project.public_key.encode(), public_key.encode("utf-8", "replace")):
        raise IngestError(403, "Unknown project or wrong project key; check the DSN.")
    return project


def _accept(project, raw_event: dict) -> str:
    """Hand the event to the workers and return its id; without Redis, store it in this request instead."""
    try:
        return queue_event(project.id, raw_event)
    except RedisError as exc:
        logger.warning("ingest.stored_inline project=%s reason=%s", project.id, exc.__class__.__name__)
        return store_now(project, raw_event)
