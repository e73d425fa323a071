"""The API's issues and events in the shapes of Sentry's API (its published OpenAPI document).

The webhooks carry their own shapes (``dispatch/serializers.py``); the API's issue starts from the webhook's
and adds what Sentry's issue endpoints answer. Fields Hookline has no data for carry the documented empty value
(``[]``, ``{}``, ``null``, ``false``), never an invented one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from ...alerts.eventstore import exceptions_of
from ...alerts.issue_history import activity_of
from ...alerts.serializers import serialize_issue, serialize_issues
from ...core.extensions import db
from ...models import Event, Group, utcnow
from .apps import iso

STATS_HOURS = 24  # Sentry's default groupStatsPeriod: 24 hourly buckets
# Sentry's GroupInboxReason: why an unresolved issue is in the inbox.
INBOX_NEW, INBOX_REGRESSION, INBOX_ESCALATING, INBOX_ONGOING = 0, 2, 5, 6
# Sentry's activity types for what Hookline records on an issue.
ACTIVITY_TYPES = {"set_resolved": "set_resolved", "set_ignored": "set_ignored", "set_unresolved": "set_unresolved",
                  "assigned": "assigned", "unassigned": "unassigned", "comment": "note",
                  "regression": "set_regression", "escalating": "set_escalating"}


def api_issues(groups: list[Group]) -> list[dict]:
    """A page of issues as Sentry's issue list answers them (with 24 hours of hourly ``stats``)."""
    base_url = current_app.config["BASE_URL"]
    stats = hourly_counts([group.id for group in groups])
    return [_api_issue(shape, group, stats[group.id]) for shape, group in zip(serialize_issues(groups, base_url), groups)]


def api_issue(group: Group) -> dict:
    """One issue as Sentry's issue details answer it: the list's fields plus its activity."""
    shape = _api_issue(serialize_issue(group, current_app.config["BASE_URL"]), group, hourly_counts([group.id])[group.id])
    return {**shape, "activity": [_activity(entry) for entry in reversed(activity_of(group))], "participants": [],
            "seenBy": [], "tags": [], "userReportCount": 0, "firstRelease": None, "lastRelease": None}


def _api_issue(shape: dict, group: Group, stats: list[list[int]]) -> dict:
    return {
        **shape,
        "stats": {"24h": stats},
        "lifetime": {"count": shape["count"], "userCount": shape["userCount"], "firstSeen": shape["firstSeen"],
                     "lastSeen": shape["lastSeen"]},
        "filtered": None,
        "inbox": _inbox(group),
        "owners": None,
        "derivedData": {"blocker": "", "progress": "", "status": "", "viewCount": 0, "hasOpenFixPr": False,
                        "isAssigned": group.assignee_id is not None, "hasRootCause": False,
                        "lastCompletedAutofixStep": "", "lastProgressedAt": None},
        "integrationIssues": [],
        "sentryAppIssues": [],
        "latestEventHasAttachments": False,
        "matchingEventId": None,
        "matchingEventEnvironment": None,
        "sessionCount": 0,
        "priorityLockedAt": None,
        "seerFixabilityScore": None,
        "seerAutofixLastTriggered": None,
        "seerExplorerAutofixLastTriggered": None,
    }


def _inbox(group: Group) -> dict | None:
    """Sentry's inbox entry: an unresolved issue is there as new, regressed, escalating or ongoing; others are not."""
    if group.status != "unresolved":
        return None
    if group.escalated_at is not None:
        reason, since = INBOX_ESCALATING, group.escalated_at
    elif group.regressed_at is not None:
        reason, since = INBOX_REGRESSION, group.regressed_at
    else:
        reason, since = (INBOX_NEW if group.times_seen <= 1 else INBOX_ONGOING), group.first_seen
    return {"reason": reason, "reason_details": None, "date_added": iso(since)}


def _activity(entry) -> dict:
    user = entry.user
    kind = ACTIVITY_TYPES.get(entry.kind, entry.kind)
    if kind == "set_resolved" and entry.data:  # Sentry's type for a resolution in a release
        kind = "set_resolved_in_release"
    return {"id": str(entry.id), "type": kind, "data": entry.data,
            "user": {"id": str(user.id), "name": user.name or user.email, "email": user.email} if user else None,
            "dateCreated": iso(entry.date)}


def hourly_counts(group_ids: list[int], hours: int = STATS_HOURS) -> dict[int, list[list[int]]]:
    """Each issue's events per hour for the last ``hours`` hours, as Sentry's ``stats``: [[unix hour, count], ...]."""
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(hours=hours - 1)
    counts: dict[int, dict[datetime, int]] = {group_id: {} for group_id in group_ids}
    if group_ids:
        # Counted by the database, an hour a row: a busy issue's day of events is never read into Python.
        if db.session.get_bind().dialect.name == "postgresql":
            hour = func.date_trunc("hour", Event.received)
        else:
            hour = func.strftime("%Y-%m-%d %H:00:00", Event.received)
        rows = db.session.execute(select(Event.group_id, hour, func.count())
                                  .where(Event.group_id.in_(group_ids), Event.received >= start)
                                  .group_by(Event.group_id, hour))
        for group_id, value, count in rows:
            counts[group_id][value if isinstance(value, datetime) else datetime.fromisoformat(value)] = count
    epoch = datetime(1970, 1, 1)
    return {group_id: [[int((start + timedelta(hours=n) - epoch).total_seconds()),
                        per_hour.get(start + timedelta(hours=n), 0)] for n in range(hours)]
            for group_id, per_hour in counts.items()}


def event_summary(event: Event) -> dict:
    """An event as Sentry's event lists answer it."""
    data = event.data
    return {
        "id": event.event_id,
        "eventID": event.event_id,
        "groupID": str(event.group_id),
        "projectID": str(event.project_id),
        "title": event.title,
        "message": data.get("message") or "",
        "culprit": data.get("culprit") or "",
        "location": data.get("transaction") if isinstance(data.get("transaction"), str) else None,
        "platform": data.get("platform"),
        "event.type": data.get("type", "error"),
        "dateCreated": data.get("datetime") or iso(event.received),
        "metadata": data.get("metadata") if isinstance(data.get("metadata"), dict) else {},
        "crashFile": None,
        "tags": [{"key": key, "value": value} for key, value in data.get("tags") or []],
        "user": _user(data.get("user")),
    }


def event_detail(event: Event) -> dict:
    """An event as Sentry's event details answer it: the summary plus ``entries`` (exception, message,
    breadcrumbs, request), ``dateReceived``, the issue's previous and next events, and the SDK."""
    data = event.data
    summary = event_summary(event)
    previous_id, next_id = _neighbours(event)
    release = data.get("release")
    sdk = data.get("sdk") if isinstance(data.get("sdk"), dict) else None
    return {
        **summary,
        "type": data.get("type", "error"),
        "platform": summary["platform"] or "other",
        "message": summary["message"],
        "dateReceived": iso(event.received),
        "entries": entries_of(data),
        "contexts": data.get("contexts") if isinstance(data.get("contexts"), dict) else {},
        "context": data.get("extra") if isinstance(data.get("extra"), dict) else {},
        "packages": data.get("modules") if isinstance(data.get("modules"), dict) else {},
        "sdk": {"name": _text_or_none(sdk.get("name")), "version": _text_or_none(sdk.get("version"))} if sdk else None,
        "release": {"version": str(release)} if release else None,
        "dist": _text_or_none(data.get("dist")),
        "fingerprints": [event.group.fingerprint_hash],
        "previousEventID": previous_id,
        "nextEventID": next_id,
        "size": len(event.data_json.encode()),
        "errors": [],
        "_meta": {},
        "occurrence": None,
        "resolvedWith": [],
        "sdkUpdates": [],
        "userReport": None,
    }


def _neighbours(event: Event) -> tuple[str | None, str | None]:
    """The event ids just before and after this one in its issue (by arrival)."""
    same_issue = select(Event.event_id).where(Event.group_id == event.group_id)
    previous = db.session.scalar(same_issue.where(Event.id < event.id).order_by(Event.id.desc()).limit(1))
    following = db.session.scalar(same_issue.where(Event.id > event.id).order_by(Event.id).limit(1))
    return previous, following


def entries_of(data: dict) -> list[dict]:
    """Sentry's ``entries``: the event's interfaces, each ``{"type", "data"}``, frames in Sentry's camelCase."""
    entries = []
    exceptions = exceptions_of(data)
    if exceptions:
        entries.append({"type": "exception", "data": {"values": [_exception(value) for value in exceptions],
                                                      "hasSystemFrames": False, "excOmitted": None}})
    if data.get("message"):
        entries.append({"type": "message", "data": {"formatted": data["message"]}})
    crumbs = data.get("breadcrumbs")
    crumbs = crumbs.get("values") if isinstance(crumbs, dict) else crumbs
    if isinstance(crumbs, list) and crumbs:
        entries.append({"type": "breadcrumbs", "data": {"values": [c for c in crumbs if isinstance(c, dict)]}})
    if isinstance(data.get("request"), dict):
        entries.append({"type": "request", "data": data["request"]})
    return entries


def _exception(value: dict) -> dict:
    stacktrace = value.get("stacktrace") if isinstance(value.get("stacktrace"), dict) else {}
    frames = [frame for frame in stacktrace.get("frames") or [] if isinstance(frame, dict)]
    mechanism = value.get("mechanism") if isinstance(value.get("mechanism"), dict) else None
    return {"type": value.get("type"), "value": value.get("value"), "module": value.get("module"),
            "mechanism": mechanism, "stacktrace": {"frames": [_frame(frame) for frame in frames]} if frames else None}


def _frame(frame: dict) -> dict:
    line = frame.get("lineno") if isinstance(frame.get("lineno"), int) else None
    context = []
    if line is not None and isinstance(frame.get("context_line"), str):
        before = [text for text in frame.get("pre_context") or [] if isinstance(text, str)]
        after = [text for text in frame.get("post_context") or [] if isinstance(text, str)]
        context = ([[line - len(before) + n, text] for n, text in enumerate(before)] + [[line, frame["context_line"]]]
                   + [[line + 1 + n, text] for n, text in enumerate(after)])
    return {"filename": frame.get("filename"), "absPath": frame.get("abs_path"), "module": frame.get("module"),
            "function": frame.get("function"), "lineNo": line, "colNo": frame.get("colno"),
            "inApp": bool(frame.get("in_app")), "context": context, "vars": frame.get("vars")}


def _user(user) -> dict | None:
    """The event's user with Sentry's fields, each a string or null."""
    if not isinstance(user, dict):
        return None
    shape = {key: _text_or_none(user.get(key)) for key in ("id", "email", "username", "ip_address", "name")}
    shape["data"] = user.get("data") if isinstance(user.get("data"), dict) else None
    geo = user.get("geo")
    shape["geo"] = {key: str(value) for key, value in geo.items()} if isinstance(geo, dict) else None
    return shape


def _text_or_none(value) -> str | None:
    return None if value is None or isinstance(value, (dict, list)) else str(value)
