"""Write audit log entries (the caller commits)."""

from __future__ import annotations

import json

from sqlalchemy import select

from .extensions import db
from .models import AuditLogEntry


def record_audit(organization_id: int, event: str, *, actor_id: int | None = None, target_object: int | None = None,
                 target_label: str = "", data: dict | None = None) -> AuditLogEntry:
    entry = AuditLogEntry(organization_id=organization_id, actor_id=actor_id, event=event,
                          target_object=target_object, target_label=target_label, data_json=json.dumps(data or {}))
    db.session.add(entry)
    return entry


def list_audit_entries(organization_id: int, limit: int = 200) -> list[AuditLogEntry]:
    return list(db.session.scalars(
        select(AuditLogEntry).where(AuditLogEntry.organization_id == organization_id)
        .order_by(AuditLogEntry.datetime.desc(), AuditLogEntry.id.desc()).limit(limit)
    ))
