"""Alert rules: issue alert rules (per event), metric alert rules (event counts), and their incidents."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.extensions import db
from .accounts import User, utcnow
from .issues import Project

# When an issue alert rule looks at an event.
RULE_TRIGGERS = {
    "first_seen": "A new issue is created",
    "regression": "A resolved issue reappears",
    "every_event": "Every event",
}
INCIDENT_STATUSES = ("warning", "critical", "closed")
# What an incident's status history records: the status it moved to (``resolved`` when it closed).
INCIDENT_CHANGES = ("warning", "critical", "resolved")


class ActionsMixin:
    """Rules carry ``actions``: ``[{"sentry_app_id": int, "settings": [{"name", "value"}, ...]}, ...]``."""

    actions_json: Mapped[str] = mapped_column(Text, default="[]")

    @property
    def actions(self) -> list[dict]:
        return json.loads(self.actions_json or "[]")

    @actions.setter
    def actions(self, value: list[dict]) -> None:
        self.actions_json = json.dumps(value)


class IssueAlertRule(ActionsMixin, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(20), default="first_seen")
    # Only events at this level or above; None means any level.
    min_level: Mapped[str | None] = mapped_column(String(10), default=None)
    frequency_minutes: Mapped[int] = mapped_column(Integer, default=30)
    date_added: Mapped[datetime] = mapped_column(default=utcnow)

    project: Mapped[Project] = relationship(lazy="joined")


class MetricAlertRule(ActionsMixin, db.Model):
    """Counts a project's events over the last ``time_window_minutes`` and compares with thresholds."""

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    time_window_minutes: Mapped[int] = mapped_column(Integer, default=10)
    warning_threshold: Mapped[int | None] = mapped_column(Integer, default=None)
    critical_threshold: Mapped[int] = mapped_column(Integer)
    # Resolve when the count falls below this; None means below the lowest alerting threshold.
    resolve_threshold: Mapped[int | None] = mapped_column(Integer, default=None)
    date_added: Mapped[datetime] = mapped_column(default=utcnow)
    # The moment of the latest evaluation (by the minute tick or an event): the tick evaluates each minute that began
    # after it, once, and never a minute before it (incidents.py). None: never evaluated.
    evaluated_at: Mapped[datetime | None] = mapped_column(default=None)

    project: Mapped[Project] = relationship(lazy="joined")

    @property
    def effective_resolve_threshold(self) -> int:
        if self.resolve_threshold is not None:
            return self.resolve_threshold
        return self.warning_threshold if self.warning_threshold is not None else self.critical_threshold


class Incident(db.Model):
    __table_args__ = (UniqueConstraint("organization_id", "identifier"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    alert_rule_id: Mapped[int] = mapped_column(ForeignKey("metric_alert_rule.id", ondelete="CASCADE"), index=True)
    identifier: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20))
    metric_value: Mapped[int] = mapped_column(Integer, default=0)
    date_started: Mapped[datetime] = mapped_column(default=utcnow)
    date_closed: Mapped[datetime | None] = mapped_column(default=None)

    alert_rule: Mapped[MetricAlertRule] = relationship(lazy="joined")


class IncidentStatusChange(db.Model):
    """An incident opened, changed status or was resolved: the value then, who (None: the rule), what was sent."""

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    metric_value: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), default=None)
    # The notifications queued with the change: [{"sentry_app_id": int, "webhook_id": str}, ...]
    notifications_json: Mapped[str] = mapped_column(Text, default="[]")
    date: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User | None] = relationship(lazy="joined")

    @property
    def notifications(self) -> list[dict]:
        return json.loads(self.notifications_json or "[]")
