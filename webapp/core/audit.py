"""The audit log: write entries (the caller commits), and say in words what each one records.

Every event is named ``<object>.<action>``; ``EVENTS`` is the catalogue of them, with the label people read.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime

from sqlalchemy import select

from ..models import AuditLogEntry, Membership, find_user_by_email
from .extensions import db

logger = logging.getLogger(__name__)

# Every event Hookline records, with its label, in the order the filter lists them.
EVENTS: dict[str, str] = {
    "app.create": "App registered",
    "app.edit": "App edited",
    "app.remove": "App deleted",
    "app.disable": "App disabled",
    "app.enable": "App re-enabled",
    "app.rotate-secret": "App secret rotated",
    "app.test-alert": "Test alert sent",
    "project.create": "Project created",
    "project.edit": "Project edited",
    "project.remove": "Project deleted",
    "project-key.create": "Client key created",
    "project-key.edit": "Client key edited",
    "project-key.disable": "Client key disabled",
    "project-key.enable": "Client key enabled",
    "project-key.remove": "Client key deleted",
    "alert-rule.create": "Issue alert rule created",
    "alert-rule.edit": "Issue alert rule edited",
    "alert-rule.remove": "Issue alert rule deleted",
    "metric-alert-rule.create": "Metric alert rule created",
    "metric-alert-rule.edit": "Metric alert rule edited",
    "metric-alert-rule.remove": "Metric alert rule deleted",
    "incident.resolve": "Incident resolved by hand",
    "org.edit": "Organisation settings changed",
    "member.invite": "Member invited",
    "member.invite-revoke": "Invitation revoked",
    "member.join": "Member joined",
    "member.edit": "Member changed",
    "member.remove": "Member removed",
    "user.password-change": "Password changed",
    "user.password-reset": "Password reset",
    "token.create": "API token created",
    "token.revoke": "API token revoked",
    "login.success": "Logged in",
    "login.failure": "Login failed",
}

# The names used before the catalogue, and what each is called now (migration 0010 renames stored rows).
RENAMED: dict[str, str] = {
    "sentry-app.add": "app.create",
    "sentry-app.edit": "app.edit",
    "sentry-app.remove": "app.remove",
    "internal-integration.disable": "app.disable",
    "internal-integration.enable": "app.enable",
    "internal-integration.rotate-secret": "app.rotate-secret",
    "projectkey.add": "project-key.create",
    "projectkey.edit": "project-key.edit",
    "projectkey.remove": "project-key.remove",
}

# What a data key is called on the page; a key not listed is shown with its underscores as spaces.
FIELD_LABELS = {
    "webhook_url": "url",
    "key_rate_limit": "events per minute per key",
    "rate_limit": "events per minute",
    "is_active": "active",
    "public_key": "public key",
    "previous_valid_until": "old secret valid until",
    "ip_address": "IP address",
    "min_level": "lowest level",
    "frequency_minutes": "at most every (minutes)",
    "time_window_minutes": "window (minutes)",
    "critical_threshold": "critical threshold",
    "warning_threshold": "warning threshold",
    "resolve_threshold": "resolve threshold",
    "apps": "sends to",
    "api_tokens_ended": "API tokens ended",
    "api_tokens_kept": "API tokens kept",
}


def record_audit(organization_id: int, event: str, *, actor_id: int | None = None, target_object: int | None = None,
                 target_label: str = "", data: dict | None = None) -> AuditLogEntry:
    """Add an entry for ``event`` (a name of ``EVENTS``) to the session; the caller commits."""
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r}: add it to EVENTS")
    entry = AuditLogEntry(organization_id=organization_id, actor_id=actor_id, event=event,
                          target_object=target_object, target_label=target_label[:255],
                          data_json=json.dumps(data or {}, default=str))
    db.session.add(entry)
    return entry


def changed_fields(old: dict, new: dict) -> dict[str, list]:
    """Return ``{"field": [old, new]}`` for every field whose value differs (what an ``*.edit`` entry keeps)."""
    return {field: [old.get(field), value] for field, value in new.items() if old.get(field) != value}


def record_login(email: str, address: str, failure: str | None = None, at: datetime | None = None) -> None:
    """Record a login (``failure`` None) or a failed one in every organisation of the person with ``email``; commit.

    An email without an account is in no organisation: it gets a log line only (without the email, which may be
    a mistyped password). ``at`` is when the attempt was made (a failed one is recorded later, by a job).
    """
    user = find_user_by_email(email or "")
    if user is None:
        logger.info("login.failure reason=%s unknown_email=1 address=%s", failure, address)
        return
    event = "login.failure" if failure else "login.success"
    data = {"ip_address": address, **({"reason": failure} if failure else {})}
    memberships = db.session.scalars(select(Membership).where(Membership.user_id == user.id))
    for membership in memberships:
        entry = record_audit(membership.organization_id, event, actor_id=None if failure else user.id,
                             target_object=user.id, target_label=user.email, data=data)
        if at is not None:
            entry.datetime = at
    db.session.commit()


def event_label(event: str) -> str:
    return EVENTS.get(event) or EVENTS.get(RENAMED.get(event, ""), event)


def describe(entry: AuditLogEntry) -> list[str]:
    """Return the entry's data as lines a person reads: "role: member → manager", lists joined with commas."""
    pairs = entry.event.endswith(".edit")
    return [f"{field_label(name)}: {_change(value) if pairs and _is_pair(value) else readable(value)}"
            for name, value in entry.data.items()]


def field_label(name: str) -> str:
    return FIELD_LABELS.get(name, name.replace("_", " "))


def readable(value) -> str:
    """Return ``value`` as text without Python's or JSON's punctuation."""
    if value is None or value == "" or value == []:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(readable(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{field_label(str(key))} {readable(item)}" for key, item in value.items())
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def _is_pair(value) -> bool:
    return isinstance(value, list) and len(value) == 2


def _change(pair: list) -> str:
    return f"{readable(pair[0])} → {readable(pair[1])}"
