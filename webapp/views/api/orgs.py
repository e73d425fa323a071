"""The organisation's audit log through the API (issues and events: issues.py, events.py)."""

from __future__ import annotations

from flask import request

from ...accounts.audit_search import AuditFilterError, audit_statement, parse_filters
from ...core.audit import EVENTS, describe, event_label
from . import ApiError, bp, org_for, paged_query, require_manager
from .apps import iso


@bp.route("/organizations/<org_slug>/audit-logs/")
def audit_logs(org_slug):
    """The log, newest first, filtered by ``event``, ``actor`` (a user id, or "hookline"), ``start`` and ``end``."""
    organization, role = org_for(org_slug)
    require_manager(role)
    try:
        filters = parse_filters(request.args, organization.id)
    except AuditFilterError as exc:
        raise ApiError(400, str(exc)) from None
    options = list(EVENTS)
    return paged_query(audit_statement(organization.id, filters),
                       lambda entries: {"rows": [serialize_audit_entry(entry) for entry in entries], "options": options})


def serialize_audit_entry(entry) -> dict:
    """Sentry's audit log entry, with Hookline's ``eventLabel`` and ``details`` (the data in words)."""
    data = entry.data
    return {
        "id": str(entry.id),
        "actor": {"id": str(entry.actor.id), "name": entry.actor.name, "email": entry.actor.email} if entry.actor else None,
        "event": entry.event,
        "eventLabel": event_label(entry.event),
        "ipAddress": data.get("ip_address"),
        "note": entry.target_label,
        "targetObject": entry.target_object,
        "targetUser": None,
        "data": data,
        "details": describe(entry),
        "dateCreated": iso(entry.datetime),
    }
