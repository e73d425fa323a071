"""Emails to an organisation's owners and managers, built here and sent by a mail job (``send_async``)."""

from __future__ import annotations

import logging
from datetime import date

from flask import current_app, render_template
from rq import Retry
from sqlalchemy import select

from . import keys
from .dispatch.payloads import app_page_url
from .dispatch.queues import get_queue
from .extensions import db
from .models import MANAGING_ROLES, Membership, SentryApp, User

logger = logging.getLogger(__name__)

# An SMTP outage is retried for about a day before the job lands in RQ's failed registry (kept 30 days).
MAIL_RETRY = Retry(max=10, interval=[30, 60, 300, 900, 1800, 3600, 3600, 7200, 14400, 28800])


def recipients_for(organization_id: int) -> list[str]:
    """Return the emails of the organisation's owners and managers."""
    return list(db.session.scalars(
        select(User.email).join(Membership)
        .where(Membership.organization_id == organization_id, Membership.role.in_(MANAGING_ROLES))
        .order_by(User.email)
    ))


def app_page_link(sentry_app: SentryApp, referrer: str) -> str:
    return f"{app_page_url(current_app.config['BASE_URL'], sentry_app)}?referrer={referrer}"


def send_async(subject: str, recipients: list[str], text: str, html: str) -> str | None:
    """Queue the message on the mail queue (the mail job sends it and retries SMTP failures)."""
    if not recipients:
        logger.warning("mail.no_recipients subject=%r", subject)
        return None
    job = get_queue(keys.MAIL_QUEUE).enqueue(
        "webapp.dispatch.tasks.send_mail", subject, recipients, text, html,
        retry=MAIL_RETRY, result_ttl=7 * 24 * 3600, failure_ttl=30 * 24 * 3600,
    )
    logger.info("mail.queued job=%s subject=%r recipients=%s", job.id, subject, len(recipients))
    return job.id


def notify_disable(sentry_app: SentryApp, reason: str) -> str | None:
    """Tell the owners and managers that the app was disabled, why, and where to fix it."""
    context = {"sentry_app": sentry_app, "reason": reason, "link": app_page_link(sentry_app, "disabled-app")}
    return send_async(
        f"Action required: Fix your {sentry_app.name} integration",
        recipients_for(sentry_app.organization_id),
        render_template("emails/disabled.txt", **context),
        render_template("emails/disabled.html", **context),
    )


def notify_broken_warning(sentry_app: SentryApp, failing_since: date, disable_on: date) -> str | None:
    """Warn the owners and managers that the app will be disabled on ``disable_on`` unless a delivery succeeds."""
    context = {"sentry_app": sentry_app, "failing_since": failing_since, "disable_on": disable_on,
               "link": app_page_link(sentry_app, "failing-app")}
    return send_async(
        f"Your {sentry_app.name} integration is failing and will be disabled on {disable_on:%d %B %Y}",
        recipients_for(sentry_app.organization_id),
        render_template("emails/warning.txt", **context),
        render_template("emails/warning.html", **context),
    )
