"""``check_broken``: after a failed attempt, warn on day 3 of a failing streak and disable a broken app once."""

from __future__ import annotations

import logging
from datetime import date, timedelta

from flask import current_app
from sqlalchemy import update

from ..core import clock, keys
from ..core.audit import record_audit
from ..core.extensions import db
from ..core.redis_store import get_redis
from ..models import SentryApp, utcnow
from .health import IntegrationRequestBuffer, broken_reason, failing_since
from .notifications import notify_broken_warning, notify_disable

logger = logging.getLogger(__name__)


def check_broken(sentry_app: SentryApp, today: date | None = None) -> bool:
    """Disable the app if it is broken (return True), else warn once per failing streak when it reaches the warning day."""
    config = current_app.config
    today = today or clock.today()
    buffer = IntegrationRequestBuffer(get_redis(), sentry_app.id, sentry_app.organization_id)
    history = buffer.daily_counts(keys.HEALTH_DAYS, today)  # one read serves both checks
    reason = broken_reason(history[-config["BROKEN_RANGE_DAYS"]:], config["BROKEN_TIMEOUT_THRESHOLD"])
    if reason:
        return disable_broken_app(sentry_app, reason, buffer, today)
    start = failing_since(history)
    if start and (today - start).days + 1 >= config["BROKEN_WARNING_DAY"]:
        warn_once_per_streak(sentry_app, start, config["BROKEN_RANGE_DAYS"])
    return False


def disable_broken_app(sentry_app: SentryApp, reason: str, buffer: IntegrationRequestBuffer, today: date) -> bool:
    """Move the app from enabled to disabled in one atomic UPDATE; only the winner audits, clears and emails.

    1. ``UPDATE … WHERE status = 'enabled'``: with many workers racing, exactly one changes a row.
    2. The winner writes the audit entry and the email in the same commit, then clears the health counters.
    """
    won = db.session.execute(
        update(SentryApp).where(SentryApp.id == sentry_app.id, SentryApp.status == "enabled")
        .values(status="disabled", disabled_at=utcnow(), disabled_reason=reason)
    ).rowcount == 1
    if not won:
        db.session.rollback()
        return False
    record_audit(sentry_app.organization_id, "app.disable", target_object=sentry_app.id,
                 target_label=sentry_app.name, data={"reason": reason, "webhook_url": sentry_app.webhook_url})
    db.session.refresh(sentry_app)
    notify_disable(sentry_app, reason)  # the email commits with the disable (the outbox)
    db.session.commit()
    buffer.clear(today)
    logger.warning("integration.disabled app=%s reason=%s", sentry_app.slug, reason)
    return True


def warn_once_per_streak(sentry_app: SentryApp, failing_since: date, range_days: int) -> bool:
    disable_on = failing_since + timedelta(days=range_days - 1)
    first = get_redis().set(keys.broken_warning(sentry_app.id, failing_since.isoformat()), 1, nx=True,
                            ex=keys.HEALTH_DAYS * 24 * 3600)
    if first:
        notify_broken_warning(sentry_app, failing_since, disable_on)
        db.session.commit()
    return bool(first)
