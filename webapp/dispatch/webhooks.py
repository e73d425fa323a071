"""Send one webhook attempt and record it (``send_and_save_webhook_request``)."""

from __future__ import annotations

import json
import logging

from flask import current_app

from ..models import SentryApp
from ..netguard import AddressPolicy
from ..redis_store import get_redis
from .events import resource_of
from .http import WebhookResponse, post_webhook
from .request_log import SentryAppWebhookRequestsBuffer
from .signing import build_headers, new_message_id

logger = logging.getLogger(__name__)


def signing_secrets(sentry_app: SentryApp) -> list[str]:
    """Return the secrets that sign the app's webhooks, current one first."""
    return [sentry_app.client_secret]


def send_and_save_webhook_request(
    sentry_app: SentryApp,
    event_type: str,
    envelope: dict,
    *,
    attempt: int = 1,
    message_id: str | None = None,
    log_extra: dict | None = None,
) -> WebhookResponse:
    """Send one attempt of ``envelope`` to the app's webhook and write it to the request log.

    1. Serialise the envelope once; those exact bytes are signed and sent.
    2. POST through the guarded HTTP client (timeout, no redirects, size cap, address check).
    3. Record the attempt in the request log, whatever the outcome.
    """
    config = current_app.config
    body = json.dumps(envelope).encode("utf-8")
    headers = build_headers(resource_of(event_type), body, signing_secrets(sentry_app), message_id or new_message_id())
    response = post_webhook(
        sentry_app.webhook_url,
        body,
        headers,
        policy=AddressPolicy.from_config(config),
        timeout=config["WEBHOOK_TIMEOUT"],
        max_bytes=config["WEBHOOK_MAX_RESPONSE_BYTES"],
    )
    SentryAppWebhookRequestsBuffer(get_redis(), sentry_app.id).add_request(
        event_type=event_type,
        response_code=response.status_code,
        webhook_url=sentry_app.webhook_url,
        organization_id=sentry_app.organization_id,
        request_id=headers["Request-ID"],
        duration_ms=response.duration_ms,
        attempt=attempt,
        response_headers=response.headers,
        request_headers=headers,
        request_body=body.decode("utf-8"),
        response_body=response.error or response.body,
        extra=log_extra,
    )
    logger.info(
        "webhook.sent app=%s event=%s code=%s duration_ms=%s attempt=%s",
        sentry_app.slug, event_type, response.status_code, response.duration_ms, attempt,
    )
    return response
