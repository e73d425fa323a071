"""One message to one app, through every attempt: send, retry on a schedule, or keep it while the app is disabled."""

from __future__ import annotations

import json
import logging
import random
import time
from datetime import datetime, timezone

from flask import current_app

from ..core import clock, keys
from ..core.extensions import db
from ..core.outbox import enqueue_after_commit, enqueue_specs, schedule_spec
from ..core.redis_store import get_redis
from ..models import SentryApp
from .payloads import build_envelope
from .queues import app_caps, delivery_spec, retry_job_id
from .request_log import LoggedRequest, failed_messages_since
from .signing import new_message_id
from .webhooks import send_and_save_webhook_request

logger = logging.getLogger(__name__)

JITTER = 0.2


class ResendRefused(Exception):
    """A logged request cannot be sent again; the message says why, for the person who asked."""


def retry_delay(attempt: int, retry_after: float | None) -> float:
    """Return the seconds before attempt ``attempt + 1``: the schedule's step ±20 %, or longer if the receiver asked."""
    config = current_app.config
    base = config["WEBHOOK_RETRY_SCHEDULE"][attempt - 1]
    delay = base * random.uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None:
        delay = max(delay, min(retry_after, config["WEBHOOK_RETRY_AFTER_CAP"]))
    return delay


def enqueue_delivery_jobs(many_args: list[tuple]) -> list[str]:
    """Queue one ``deliver_webhook`` job per args tuple now, in one pipelined round trip; return the job ids."""
    caps = app_caps(args[0] for args in many_args)
    return enqueue_specs([delivery_spec(args, cap=caps[args[0]]) for args in many_args])


def deliver_webhook(sentry_app_id: int, event_type: str, data: dict, actor: dict | None = None,
                    message_id: str | None = None, attempt: int = 1, replay: bool = False,
                    organization_id: int | None = None, resend: bool = False, test: bool = False) -> str:
    """Make attempt ``attempt`` of one message and return what happened.

    1. A deleted app, or an id that now belongs to another organisation's app: drop it. A disabled app:
       keep the message to replay when it is re-enabled (a test alert goes through, as test alerts do).
    2. Send and record the attempt (log, health, broken check); ``replay``/``resend``/``test`` mark its log entry.
    3. A transient failure with attempts left: schedule the next attempt, same webhook-id.
    4. The last attempt of a message that made the app broken is kept with the missed ones, so re-enabling
       with replay sends it too.
    """
    sentry_app = db.session.get(SentryApp, sentry_app_id)
    if sentry_app is None or organization_id not in (None, sentry_app.organization_id):
        logger.info("delivery.missing_app sentry_app_id=%s event=%s", sentry_app_id, event_type)
        if message_id:  # nothing to send, ever: the outbox row kept for it can go
            get_redis().zadd(keys.OUTBOX_DONE, {message_id: time.time()})
        return "missing"
    message_id = message_id or new_message_id()
    if not sentry_app.is_enabled and not test:
        record_missed(sentry_app.id, event_type, data, actor, message_id)
        return "missed"
    envelope = build_envelope(event_type.split(".", 1)[1], sentry_app.installation.uuid, data, actor)
    max_attempts = 1 if test else 1 + len(current_app.config["WEBHOOK_RETRY_SCHEDULE"])
    marks = {name: True for name, on in (("replay", replay), ("resend", resend), ("test", test)) if on}
    result = send_and_save_webhook_request(
        sentry_app, event_type, envelope, attempt=attempt, max_attempts=max_attempts, message_id=message_id,
        count_health=not test, log_extra=marks or None,
    )
    if result.will_retry:
        delay = retry_delay(attempt, result.outcome.retry_after)
        next_attempt = (sentry_app_id, event_type, data, actor, message_id, attempt + 1, replay,
                        sentry_app.organization_id, resend, test)
        spec = delivery_spec(next_attempt, keys.RETRY_QUEUE, cap=result.app_cap)
        spec.job_id = retry_job_id(message_id, attempt, resend)
        schedule_spec(spec, delay)
        logger.info("delivery.retry_scheduled app=%s event=%s attempt=%s in=%.0fs", sentry_app.slug, event_type,
                    attempt + 1, delay)
        return "retry"
    if result.disabled_app:  # a retry left would find the app disabled and keep the message itself
        record_missed(sentry_app.id, event_type, data, actor, message_id)
    return result.outcome.kind


def resend_refusal(sentry_app: SentryApp, logged: LoggedRequest) -> str | None:
    """Say why a logged request cannot be sent again, or return None if it can."""
    if not sentry_app.is_enabled and not logged.entry.get("test"):
        return (f"{sentry_app.name} is disabled, so a resend would only be kept as missed. Re-enable it to deliver "
                "again (with replay, the kept deliveries are sent too), or send a test alert to check the endpoint.")
    if _message_of(logged) is None:
        return ("This request's body was not kept whole (it was too large, or logged before bodies were kept), "
                "so it cannot be resent.")
    return None


def resend_logged_request(sentry_app: SentryApp, logged: LoggedRequest) -> str:
    """Queue a fresh delivery of a logged request's message (same event type, body and webhook-id); return its job id.

    Its attempts are logged as "resend" and retried like any delivery; a test alert goes again as one (once,
    not counted). Raise ResendRefused when ``resend_refusal`` has a reason.
    """
    refusal = resend_refusal(sentry_app, logged)
    if refusal:
        raise ResendRefused(refusal)
    event_type, data, actor, message_id = _message_of(logged)
    test = bool(logged.entry.get("test"))
    args = (sentry_app.id, event_type, data, actor, message_id, 1, False, sentry_app.organization_id, True, test)
    [job_id] = enqueue_delivery_jobs([args])
    logger.info("delivery.resend_queued app=%s event=%s request_id=%s", sentry_app.slug, event_type, logged.request_id)
    return job_id


def failed_messages(sentry_app: SentryApp, since: datetime) -> list[LoggedRequest]:
    """The app's messages whose newest logged attempt since ``since`` failed and that can be sent again."""
    if since.tzinfo is not None:
        since = since.astimezone(timezone.utc).replace(tzinfo=None)
    logged = failed_messages_since(get_redis(), sentry_app.id, since.isoformat(timespec="microseconds") + "Z")
    return [request for request in logged if _message_of(request) is not None]


def resend_failed_messages(sentry_app: SentryApp, since: datetime) -> list[str]:
    """Queue a fresh delivery of every message that failed since ``since``, each under its own webhook-id, through
    the app's and its organisation's caps like any delivery; return the job ids. Refused (ResendRefused) while
    the app is disabled: re-enabling it, with replay, sends what it missed."""
    if not sentry_app.is_enabled:
        raise ResendRefused(f"{sentry_app.name} is disabled: re-enable it (with replay) to deliver again.")
    batch = []
    for logged in failed_messages(sentry_app, since):
        event_type, data, actor, message_id = _message_of(logged)
        batch.append((sentry_app.id, event_type, data, actor, message_id, 1, False, sentry_app.organization_id, True,
                      False))
    job_ids = enqueue_delivery_jobs(batch) if batch else []
    logger.info("delivery.recovered app=%s since=%s messages=%s", sentry_app.slug, since.isoformat(), len(job_ids))
    return job_ids


def _message_of(logged: LoggedRequest) -> tuple[str, dict, dict | None, str] | None:
    """Return what the logged request delivered (event type, data, actor, webhook-id), or None if not kept whole."""
    body = logged.body()
    if body is None or not logged.message_id:
        return None
    try:
        envelope = json.loads(body)
    except ValueError:
        return None
    if not isinstance(envelope, dict) or "data" not in envelope:
        return None
    return logged.entry["event_type"], envelope["data"], envelope.get("actor"), logged.message_id


def record_missed(sentry_app_id: int, event_type: str, data: dict, actor: dict | None, message_id: str) -> None:
    """Keep a delivery a disabled app would have received (newest MISSED_KEEP, 30 days) and count it."""
    item = json.dumps({"event_type": event_type, "data": data, "actor": actor, "message_id": message_id,
                       "date": clock.now().isoformat()})
    pipe = get_redis().pipeline(transaction=False)
    pipe.lpush(keys.missed_deliveries(sentry_app_id), item)
    pipe.ltrim(keys.missed_deliveries(sentry_app_id), 0, keys.MISSED_KEEP - 1)
    pipe.expire(keys.missed_deliveries(sentry_app_id), keys.MISSED_TTL)
    pipe.incr(keys.missed_count(sentry_app_id))
    pipe.expire(keys.missed_count(sentry_app_id), keys.MISSED_TTL)
    pipe.zadd(keys.OUTBOX_DONE, {message_id: time.time()})  # kept here now: its outbox row can go
    pipe.execute()
    logger.info("delivery.missed app_id=%s event=%s", sentry_app_id, event_type)


def missed_delivery_count(sentry_app_id: int) -> int:
    return int(get_redis().get(keys.missed_count(sentry_app_id)) or 0)


def drop_missed(sentry_app_id: int) -> None:
    """Forget the kept deliveries and their count (the owner re-enabled without replaying them)."""
    get_redis().delete(keys.missed_deliveries(sentry_app_id), keys.missed_count(sentry_app_id))


def replay_missed(sentry_app_id: int, organization_id: int) -> list[bytes]:
    """Add every kept delivery to the open transaction as a fresh attempt (same webhook-id); return them as kept.

    The kept ones stay kept until the caller has committed and calls ``forget_replayed`` with them: a
    re-enable that fails to commit replays nothing and loses nothing.
    """
    kept = get_redis().lrange(keys.missed_deliveries(sentry_app_id), 0, -1)
    cap = app_caps([sentry_app_id])[sentry_app_id]
    for raw in reversed(kept):  # oldest first
        item = json.loads(raw)
        args = (sentry_app_id, item["event_type"], item["data"], item["actor"], item["message_id"], 1, True,
                organization_id)
        enqueue_after_commit(delivery_spec(args, cap=cap))
    return kept


def forget_replayed(sentry_app_id: int, replayed: list[bytes]) -> None:
    """Drop the replayed deliveries from the kept ones, by value: any kept since stay."""
    pipe = get_redis().pipeline(transaction=True)
    for raw in replayed:
        pipe.lrem(keys.missed_deliveries(sentry_app_id), 1, raw)
    pipe.delete(keys.missed_count(sentry_app_id))
    pipe.execute()
