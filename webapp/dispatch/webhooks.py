"""Send one webhook attempt and record it (``send_and_save_webhook_request``)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from flask import current_app

from ..core import clock, keys
from ..core.extensions import db
from ..core.metrics import count_delivery
from ..core.netguard import AddressPolicy
from ..core.redis_store import WriteBatch, get_redis
from ..models import SentryApp, utcnow
from .broken import check_broken
from .events import resource_of
from .health import IntegrationRequestBuffer
from .http import WebhookResponse, post_webhook
from .outcomes import Outcome, classify
from .payloads import encode
from .request_log import SentryAppWebhookRequestsBuffer
from .signing import build_headers, new_message_id

logger = logging.getLogger(__name__)


@dataclass
class Attempt:
    response: WebhookResponse
    outcome: Outcome
    will_retry: bool
    disabled_app: bool = False  # this attempt's failure made the app broken, and this worker disabled it
    app_cap: int = 1  # the app's cap on attempts in flight after this answer (see ``app_caps``)


def signing_secrets(sentry_app: SentryApp) -> list[str]:
    """Return the secrets that sign the app's webhooks: the current one, then a rotated-out one for 24 hours."""
    secrets = [sentry_app.client_secret]
    expires = sentry_app.previous_secret_expires_at
    if sentry_app.previous_client_secret and expires and expires > utcnow():
        secrets.append(sentry_app.previous_client_secret)
    return secrets


def record_timeout(buffer: IntegrationRequestBuffer, pipe, today) -> None:
    """Count a timeout or connection error toward the app's health."""
    buffer.record("timeout", today, pipe)


def record_response_for_disabling_integration(buffer: IntegrationRequestBuffer, outcome: Outcome, pipe, today) -> None:
    """Count an answered attempt toward the app's health (429 is not counted)."""
    if outcome.counted:
        buffer.record(outcome.kind, today, pipe)


def give_back_database_connection() -> None:
    """End the session's read-only transaction, keeping what it loaded: a receiver's seconds hold no connection.

    Hundreds of attempts in flight would otherwise hold hundreds of database connections (PostgreSQL allows 100
    by default) while they wait on the network. A session with changes of its own keeps its transaction.
    """
    session = db.session()
    if session.new or session.dirty or session.deleted or session.info or not session.in_transaction():
        return  # (session.info: jobs or cache changes waiting for this transaction's commit)
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True


def send_and_save_webhook_request(
    sentry_app: SentryApp,
    event_type: str,
    envelope: dict,
    *,
    attempt: int = 1,
    max_attempts: int = 1,
    message_id: str | None = None,
    count_health: bool = True,
    log_extra: dict | None = None,
) -> Attempt:
    """Send one attempt of ``envelope`` to the app's webhook, record it, and check whether the app broke.

    1. Serialise the envelope once; those exact bytes are signed and sent.
    2. POST through the guarded HTTP client (timeout, no redirects, size cap, address check).
    3. In one script call (one round trip, applied together): the request-log entry, the day's health count,
       the app's last delivery, the counters and the app's cap.
       No answer at all also pauses the app: its next attempt starts WEBHOOK_UNANSWERED_PAUSE after this one.
       The last attempt of a message also marks it done (``keys.OUTBOX_DONE``).
    4. After a counted failure, ``check_broken``.
    """
    config = current_app.config
    body = encode(envelope)
    message_id = message_id or new_message_id()
    headers = build_headers(resource_of(event_type), body, signing_secrets(sentry_app), message_id)
    give_back_database_connection()
    response = post_webhook(
        sentry_app.webhook_url, body, headers, policy=AddressPolicy.from_config(config),
        timeout=config["WEBHOOK_TIMEOUT"], max_bytes=config["WEBHOOK_MAX_RESPONSE_BYTES"],
    )
    outcome = classify(response)
    will_retry = outcome.retry and attempt < max_attempts
    extra = {"outcome": outcome.kind, **(log_extra or {})}
    if outcome.kind != "success" and not will_retry and max_attempts > 1:
        extra["delivery_failed"] = True  # no attempt follows this one
    redis = get_redis()
    writes = WriteBatch(redis)
    entry = SentryAppWebhookRequestsBuffer(redis, sentry_app.id).add_request(
        event_type=event_type, response_code=response.status_code, webhook_url=sentry_app.webhook_url,
        organization_id=sentry_app.organization_id, request_id=headers["Request-ID"],
        duration_ms=response.duration_ms, attempt=attempt, max_attempts=max_attempts, response_headers=response.headers,
        request_headers=headers, request_body=body.decode("utf-8"), response_body=response.body,
        failure=response.failure.as_dict() if response.failure else None, extra=extra, pipe=writes,
    )
    slow = response.duration_ms >= config["WEBHOOK_SLOW_SECONDS"] * 1000
    last = {"date": entry["date"], "response_code": response.status_code, **({"slow": True} if slow else {})}
    writes.hset(keys.LAST_DELIVERY, str(sentry_app.id), json.dumps(last))
    count_delivery(writes, outcome.kind, event_type, response.duration_ms / 1000)
    # The app's cap on attempts in flight follows its latest answer (see ``app_caps``): one at a time while it
    # times out or answers slowly (WEBHOOK_SLOW_SECONDS), the full cap again as soon as it answers in time, also
    # for the deliveries already waiting their turn.
    cap = 1 if response.status_code == 0 or slow else config["WEBHOOK_APP_CONCURRENCY"]
    writes.hset(keys.app_rate_limit_config(sentry_app.id), "concurrency", cap)
    pause = config["WEBHOOK_UNANSWERED_PAUSE"]
    if response.status_code == 0 and pause:
        # No answer (refused, hung, reset, not HTTP): the app's one place stays taken until the pause ends, so its
        # waiting deliveries are not each tried at once against a receiver that just failed (keys.PAUSE_MEMBER).
        now = time.time()
        writes.zadd(keys.app_rate_limit_allowed(sentry_app.id), now, keys.PAUSE_MEMBER)
        writes.zadd(keys.PAUSED_APPS, now + pause, sentry_app.id)
    if not will_retry:  # delivered or given up: the outbox row kept for it can go (dispatch/recovery.py)
        writes.zadd(keys.OUTBOX_DONE, time.time(), message_id)
    today = clock.today()
    if count_health:
        buffer = IntegrationRequestBuffer(redis, sentry_app.id, sentry_app.organization_id)
        if outcome.kind == "timeout":
            record_timeout(buffer, writes, today)
        else:
            record_response_for_disabling_integration(buffer, outcome, writes, today)
    # In a batch, a prompt success's records are sent with the batch's next ones (at most a chunk later, in one
    # call); anything else is sent now, with those held before it.
    writes.execute(defer=outcome.kind == "success" and not slow)
    # A success is in the request log and the metrics; at hundreds a second a line each would be noise (and a
    # measurable share of the worker's CPU), so only attempts that did not succeed are logged at INFO.
    logger.log(
        logging.DEBUG if outcome.kind == "success" else logging.INFO,
        "webhook.sent app=%s event=%s code=%s outcome=%s duration_ms=%s attempt=%s",
        sentry_app.slug, event_type, response.status_code, outcome.kind, response.duration_ms, attempt,
    )
    disabled = False
    if count_health and outcome.counted and outcome.kind != "success":
        disabled = check_broken(sentry_app, today)
    return Attempt(response, outcome, will_retry, disabled, cap)
