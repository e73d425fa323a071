"""Metric alert rules: count a project's recent events, open, change and resolve incidents.

Every status change is kept (``IncidentStatusChange``) with the value then, who made it and the notifications
that ``on_change`` queued with it; the incident page shows them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..core import keys
from ..core.audit import record_audit
from ..core.extensions import db
from ..models import Event, Incident, IncidentStatusChange, MetricAlertRule, Project, User, utcnow

logger = logging.getLogger(__name__)

# Called with (incident id, new status, value) before the change commits; returns the notifications it
# queued in the same transaction, [{"sentry_app_id", "webhook_id"}, ...] (None: none).
OnChange = Callable[[int, str, int], "list[dict] | None"]

# A tick evaluates at most this many minutes per rule: the minutes a longer outage missed are skipped (logged).
CATCH_UP_MINUTES = 60


class IncidentBusy(RuntimeError):
    """Another evaluation of the incident's rule holds the rule's lock; try again in a moment."""


def count_events(rule: MetricAlertRule, now: datetime) -> int:
    since = now - timedelta(minutes=rule.time_window_minutes)
    return db.session.scalar(
        select(func.count()).select_from(Event).where(Event.project_id == rule.project_id, Event.received > since,
                                                      Event.received <= now)
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


def _record_change(incident_id: int, status: str, value: int, now: datetime, notifications: list[dict] | None,
                   actor: User | None = None) -> None:
    db.session.add(IncidentStatusChange(incident_id=incident_id, status=status, metric_value=value, date=now,
                                        user_id=actor.id if actor else None,
                                        notifications_json=json.dumps(notifications or [])))


def tick_moments(evaluated_at: datetime | None, now: datetime) -> list[tuple[datetime, datetime]]:
    """Return ``(moment, minute)`` for each minute the tick owes a rule last evaluated at ``evaluated_at``, in order.

    Each minute that began after that evaluation: a past one as of its first second (when its tick was due), the
    current one as of ``now``; at most the last CATCH_UP_MINUTES. A rule never evaluated owes only this minute.
    """
    current = now.replace(second=0, microsecond=0)
    first = current
    if evaluated_at is not None:
        first = evaluated_at.replace(second=0, microsecond=0) + timedelta(minutes=1)
        oldest = current - timedelta(minutes=CATCH_UP_MINUTES - 1)
        if first < oldest:
            logger.warning("metric_alert.minutes_skipped minutes=%s", int((oldest - first).total_seconds() // 60))
            first = oldest
    moments = []
    while first <= current:
        moments.append((now if first == current else first, first))
        first += timedelta(minutes=1)
    return moments


def _mark_evaluated(rule_id: int, now: datetime, unless_since: datetime | None) -> bool:
    """Record ``now`` as the rule's latest evaluation if it is later; with ``unless_since``, return False (nothing
    written) if an evaluation at that moment or later is recorded. On PostgreSQL the row stays locked until the commit.
    """
    latest = MetricAlertRule.evaluated_at
    if unless_since is None:
        db.session.execute(update(MetricAlertRule).where(MetricAlertRule.id == rule_id,
                                                         or_(latest.is_(None), latest < now)).values(evaluated_at=now))
        return True
    return db.session.execute(
        update(MetricAlertRule).where(MetricAlertRule.id == rule_id, or_(latest.is_(None), latest < unless_since))
        .values(evaluated_at=now)
    ).rowcount == 1


def evaluate_rule(rule: MetricAlertRule, now: datetime | None = None, on_change: OnChange | None = None,
                  unless_since: datetime | None = None) -> list[tuple[int, str, int]]:
    """Compare the rule's count with its thresholds; return ``(incident id, new status, value)`` per change.

    1. Only one evaluator per rule at a time (a Redis lock), so a change is found once.
    2. The rule's ``evaluated_at`` moves on to ``now`` in the same transaction as the changes. With
       ``unless_since`` (the tick's minute), nothing is done if an evaluation at that moment or later is recorded:
       the tick evaluates a minute once, and never a past minute after a later evaluation.
    3. No incident and a threshold crossed: open one. An open incident: move it to the new status,
       or close it when the count falls under the resolve threshold.
    4. ``on_change`` is called with each change before it commits, so what it adds (the notifications)
       commits with it, and so does the change's entry in the incident's status history.
    """
    on_change = on_change or (lambda *change: None)
    now = now or utcnow()
    lock = current_app.extensions["redis"].lock(keys.metric_rule_lock(rule.id), timeout=30, blocking_timeout=10)
    if not lock.acquire():
        logger.warning("metric_alert.lock_busy rule=%s", rule.id)
        return []
    try:
        if not _mark_evaluated(rule.id, now, unless_since):
            db.session.rollback()
            return []
        value = count_events(rule, now)
        incident = open_incident(rule)
        status = target_status(rule, value, incident.status if incident else None)
        if incident is None:
            if status is None:
                db.session.commit()
                return []
            return [(_open(rule, status, value, now, on_change).id, status, value)]
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
        _record_change(*change, now, on_change(*change))
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
        try:
            with db.session.begin_nested():  # a savepoint: the rule's evaluated_at stays written
                db.session.add(incident)
        except IntegrityError:  # another rule of the organisation took the identifier
            continue
        _record_change(incident.id, status, value, now, on_change(incident.id, status, value))
        db.session.commit()
        return incident
    db.session.rollback()
    raise RuntimeError(f"could not open an incident for rule {rule.id}")


def resolve_incident(incident_id: int, actor: User, on_change: OnChange, now: datetime | None = None) -> bool:
    """Close an open incident by hand, as an automatic resolve does; return False if it was closed already.

    1. Under the rule's lock (the evaluator's), so a person and the evaluator never both close it.
    2. One conditional UPDATE closes it, with the count now as its value.
    3. ``on_change`` queues the ``resolved`` notifications; they and the history entry (with the person)
       commit with the change. If the count is still over a threshold, the next evaluation opens a new incident.
    """
    incident = db.session.get(Incident, incident_id)
    now = now or utcnow()
    lock = current_app.extensions["redis"].lock(keys.metric_rule_lock(incident.alert_rule_id), timeout=30,
                                                blocking_timeout=10)
    if not lock.acquire():
        raise IncidentBusy(f"the rule of incident {incident_id} is being evaluated")
    try:
        value = count_events(incident.alert_rule, now)
        closed = db.session.execute(
            update(Incident).where(Incident.id == incident_id, Incident.status != "closed")
            .values(status="closed", metric_value=value, date_closed=now)
        ).rowcount == 1
        if not closed:
            db.session.rollback()
            return False
        _record_change(incident_id, "resolved", value, now, on_change(incident_id, "resolved", value), actor)
        record_audit(incident.organization_id, "incident.resolve", actor_id=actor.id, target_object=incident.id,
                     target_label=f"#{incident.identifier} {incident.title}", data={"metric_value": value})
        db.session.commit()
        return True
    finally:
        lock.release()


def _events_per_minute(project_id: int, start: datetime, end: datetime) -> dict[datetime, int]:
    """Return the project's event count per minute in [start, end), by the minute each began."""
    if db.session.get_bind().dialect.name == "postgresql":
        minute = func.date_trunc("minute", Event.received)
    else:
        minute = func.strftime("%Y-%m-%d %H:%M:00", Event.received)
    rows = db.session.execute(
        select(minute, func.count()).where(Event.project_id == project_id, Event.received >= start,
                                           Event.received < end).group_by(minute)
    )
    return {value if isinstance(value, datetime) else datetime.fromisoformat(value): count for value, count in rows}


def metric_series(incident: Incident, now: datetime | None = None, points: int = 120) -> list[tuple[datetime, int]]:
    """Return the rule's metric (events in the window before each moment) from a window before the incident
    opened until it closed (or now), at most ``points`` moments and at most the last 7 days, from stored events.
    """
    rule = incident.alert_rule
    window = rule.time_window_minutes
    end = (incident.date_closed or now or utcnow()).replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = max(incident.date_started - timedelta(minutes=window), end - timedelta(days=7)).replace(
        second=0, microsecond=0)
    base = start - timedelta(minutes=window)
    counts = _events_per_minute(rule.project_id, base, end)
    minutes = int((end - base).total_seconds() // 60)
    running = [0]
    for index in range(minutes):
        running.append(running[-1] + counts.get(base + timedelta(minutes=index), 0))
    step = max(1, -(-(minutes - window) // points))
    moments = list(range(window, minutes + 1, step))
    if moments[-1] != minutes:
        moments.append(minutes)
    return [(base + timedelta(minutes=index), running[index] - running[index - window]) for index in moments]
