"""Emails to an organisation's owners and managers, built here and sent by a mail job (``send_async``)."""

from __future__ import annotations

import logging
from datetime import date

from flask import current_app, render_template
from sqlalchemy import select

from ..core.extensions import db
from ..core.outbox import enqueue_after_commit
from ..models import MANAGING_ROLES, Membership, SentryApp, User
from .payloads import app_page_url
from .queues import mail_spec

logger = logging.getLogger(__name__)

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
    """Add the message to the open transaction; the commit queues it on the mail queue (the job retries SMTP failures)."""
    if not recipients:
        logger.warning("mail.no_recipients subject=%r", subject)
        return None
    job_id = enqueue_after_commit(mail_spec((subject, recipients, text, html)))
    logger.info("mail.queued job=%s subject=%r recipients=%s", job_id, subject, len(recipients))
    return job_id


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
