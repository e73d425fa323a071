"""RQ jobs: thin wrappers that load by id and call the dispatcher. Jobs take ids, never objects."""

from __future__ import annotations

import logging

from flask import current_app
from rq import get_current_job

from ..extensions import db
from ..models import SentryApp
from .payloads import build_test_alert
from .webhooks import send_and_save_webhook_request

logger = logging.getLogger(__name__)

EXCERPT_CHARS = 300


def send_test_alert(sentry_app_id: int) -> dict:
    """Send a test ``event_alert.triggered`` to the app once (no retries) and return the outcome."""
    sentry_app = db.session.get(SentryApp, sentry_app_id)
    if sentry_app is None:
        logger.info("test_alert.missing_app sentry_app_id=%s", sentry_app_id)
        return {"outcome": "missing", "error": "The app was deleted before the test alert was sent."}
    envelope = build_test_alert(sentry_app, current_app.config["BASE_URL"])
    job = get_current_job()
    response = send_and_save_webhook_request(
        sentry_app, "event_alert.triggered", envelope, log_extra={"test": True, "job_id": job.id if job else None}
    )
    return {
        "outcome": "success" if response.is_success else ("timeout" if response.status_code == 0 else "error"),
        "response_code": response.status_code,
        "duration_ms": response.duration_ms,
        "excerpt": (response.error or response.body)[:EXCERPT_CHARS],
    }
