"""The audit log: who did what to an organisation's apps, and what Hookline did on its own."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.extensions import db
from .accounts import User, utcnow


class AuditLogEntry(db.Model):
    __table_args__ = (
        Index("ix_audit_log_entry_org_time", "organization_id", "datetime"),
        # The log's event filter reads one event of one organisation, newest first.
        Index("ix_audit_log_entry_org_event_time", "organization_id", "event", "datetime"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    # None when Hookline itself acted (an automatic disable, say).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), default=None)
    event: Mapped[str] = mapped_column(String(64))
    target_object: Mapped[int | None] = mapped_column(default=None)
    target_label: Mapped[str] = mapped_column(String(255), default="")
    data_json: Mapped[str] = mapped_column(Text, default="{}")
    datetime: Mapped[datetime] = mapped_column(default=utcnow)

    actor: Mapped[User | None] = relationship(lazy="joined")

    @property
    def data(self) -> dict:
        return json.loads(self.data_json or "{}")

    @property
    def actor_label(self) -> str:
        if self.actor:
            return self.actor.email
        return "Not logged in" if self.event == "login.failure" else "Hookline"
