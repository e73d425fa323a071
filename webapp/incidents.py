"""Metric alert rules: count a project's recent events, open, change and resolve incidents."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from . import keys
from .extensions import db
from .models import Event, Incident, MetricAlertRule, Project, utcnow

logger = logging.getLogger(__name__)


def count_events(rule: MetricAlertRule, now: datetime) -> int:
    since = now - timedelta(minutes=rule.time_window_minutes)
    return db.session.scalar(
        select(func.count()).select_from(Event).where(Event.project_id == rule.project_id, Event.received > since)
    ) or 0


def target_status(rule: MetricAlertRule, value: int, current: str | None) -> str | None:
    """Return the status an incident should have for ``value`` (None: no incident), given the current one."""
    if value >= rule.critical_threshold:
        return "critical"
    if rule.warning_threshold is not None and value >= rule.warning_threshold:
        return "warning"
    if current is not None and value >= rule.effective_resolve_threshold:
        return current  # below the alert thresholds but not yet under the resolve threshold: stay
    return None


def open_incident(rule: MetricAlertRule) -> Incident | None:
    return db.session.scalar(
        select(Incident).where(Incident.alert_rule_id == rule.id, Incident.status != "closed")
    )


def evaluate_rule(rule: MetricAlertRule, now: datetime | None = None,
                  on_change: Callable[[int, str, int], None] | None = None) -> list[tuple[int, str, int]]:
    """Compare the rule's count with its thresholds; return ``(incident id, new status, value)`` per change.

    1. Only one evaluator per rule at a time (a Redis lock), so a change is found once.
    2. No incident and a threshold crossed: open one. An open incident: move it to the new status,
       or close it when the count falls under the resolve threshold.
    3. ``on_change`` is called with each change before it commits, so what it adds (the notifications)
       commits with it.
    """
    on_change = on_change or (lambda *change: None)
    now = now or utcnow()
    lock = current_app.extensions["redis"].lock(keys.metric_rule_lock(rule.id), timeout=30, blocking_timeout=10)
    if not lock.acquire():
        logger.warning("metric_alert.lock_busy rule=%s", rule.id)
        return []
    try:
        value = count_events(rule, now)
        incident = open_incident(rule)
        status = target_status(rule, value, incident.status if incident else None)
        if incident is None:
            return [(_open(rule, status, value, now, on_change).id, status, value)] if status else []
        if status == incident.status:
            db.session.execute(update(Incident).where(Incident.id == incident.id).values(metric_value=value))
            db.session.commit()
            return []
        new_status = status or "closed"
        db.session.execute(
            update(Incident).where(Incident.id == incident.id).values(
                status=new_status, metric_value=value, date_closed=now if new_status == "closed" else None)
        )
        change = (incident.id, "resolved" if new_status == "closed" else new_status, value)
        on_change(*change)
        db.session.commit()
        return [change]
    finally:
        lock.release()


def _open(rule: MetricAlertRule, status: str, value: int, now: datetime, on_change, attempts: int = 5) -> Incident:
    organization_id = db.session.get(Project, rule.project_id).organization_id
    for _ in range(attempts):
        identifier = (db.session.scalar(
            select(func.max(Incident.identifier)).where(Incident.organization_id == organization_id)) or 0) + 1
        incident = Incident(organization_id=organization_id, alert_rule_id=rule.id, identifier=identifier,
                            title=rule.name, status=status, metric_value=value, date_started=now)
        db.session.add(incident)
        try:
            db.session.flush()
            on_change(incident.id, status, value)
            db.session.commit()
            return incident
        except IntegrityError:  # another rule of the organisation took the identifier
            db.session.rollback()
    raise RuntimeError(f"could not open an incident for rule {rule.id}")
