"""The ``data`` of each webhook, in Sentry's shapes (SPEC section 4), with absolute URLs under BASE_URL."""

from __future__ import annotations

from datetime import datetime

from redis.exceptions import RedisError
from sqlalchemy import func, select

from ..core import keys
from ..core.cache import get_from_cache
from ..core.extensions import db
from ..core.redis_store import get_redis
from ..models import Comment, Event, Group, Incident, Organization, Project, SentryAppInstallation
from .eventstore import exceptions_of, top_in_app_frame
from .issue_status import status_details, substatus


def iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="milliseconds") + "Z" if value else None


class Links:
    """Every absolute URL a payload carries; each opens a page or an API resource of Hookline."""

    def __init__(self, base_url: str, organization_slug: str):
        self.base = base_url
        self.org = organization_slug

    def issue_api(self, group_id: int) -> str:
        return f"{self.base}/api/0/organizations/{self.org}/issues/{group_id}/"

    def issue_page(self, group_id: int) -> str:
        return f"{self.base}/orgs/{self.org}/issues/{group_id}"

    def event_api(self, project_slug: str, event_id: str) -> str:
        return f"{self.base}/api/0/projects/{self.org}/{project_slug}/events/{event_id}/"

    def event_page(self, group_id: int, event_id: str) -> str:
        return f"{self.base}/orgs/{self.org}/issues/{group_id}/events/{event_id}"

    def project_page(self, project_slug: str) -> str:
        return f"{self.base}/orgs/{self.org}/projects/{project_slug}"

    def incident_page(self, identifier: int) -> str:
        return f"{self.base}/orgs/{self.org}/incidents/{identifier}"


def links_for_project(base_url: str, project_id: int) -> tuple[Links, object]:
    """Return the links builder and the cached project; organisation and project come through the cache."""
    project = get_from_cache(Project, project_id)
    organization = get_from_cache(Organization, project.organization_id)
    return Links(base_url, organization.slug), project


def serialize_issue(group: Group, base_url: str, event: Event | None = None) -> dict:
    """Return the issue as Sentry's issue webhooks and API carry it, typed as Sentry types each field.

    ``event`` is the issue's latest event when the caller has it at hand; otherwise it is read (one query):
    the top frame's ``filename``/``function`` and ``isUnhandled`` come from it.
    """
    if event is None:
        event = db.session.scalar(select(Event).where(Event.group_id == group.id).order_by(Event.id.desc()).limit(1))
    num_comments = db.session.scalar(select(func.count()).select_from(Comment).where(Comment.group_id == group.id))
    return _issue(group, base_url, event.data if event is not None else {}, num_comments, user_count(group.id))


def serialize_issues(groups: list[Group], base_url: str) -> list[dict]:
    """``serialize_issue`` for a page of issues: three queries and one Redis round trip for the whole page."""
    ids = [group.id for group in groups]
    if not ids:
        return []
    latest = select(func.max(Event.id)).where(Event.group_id.in_(ids)).group_by(Event.group_id)
    events = {event.group_id: event.data for event in db.session.scalars(select(Event).where(Event.id.in_(latest)))}
    comments = dict(db.session.execute(select(Comment.group_id, func.count()).where(Comment.group_id.in_(ids))
                                       .group_by(Comment.group_id)).all())
    try:
        pipe = get_redis().pipeline(transaction=False)
        for group_id in ids:
            pipe.pfcount(keys.group_users(group_id))
        users = dict(zip(ids, pipe.execute()))
    except RedisError:
        users = {}
    return [_issue(group, base_url, events.get(group.id, {}), comments.get(group.id, 0), int(users.get(group.id, 0)))
            for group in groups]


def _issue(group: Group, base_url: str, data: dict, num_comments: int, users: int) -> dict:
    links, project = links_for_project(base_url, group.project_id)
    assignee = group.assignee
    return {
        "id": str(group.id),
        "shortId": f"{project.slug.upper()}-{group.short_id}",
        "title": group.title,
        "culprit": group.culprit,
        "level": group.level,
        "logger": data.get("logger") if isinstance(data.get("logger"), str) else None,
        "status": group.status,
        "statusDetails": status_details(group, users),
        "substatus": substatus(group),
        "priority": PRIORITY_OF_LEVEL.get(group.level, "high"),
        "platform": group.platform,
        "type": "error",
        "issueCategory": "error",
        "issueType": "error",
        "metadata": {**group.event_metadata, **_frame_metadata(data)},
        "annotations": [],
        "assignedTo": {"type": "user", "id": str(assignee.id), "name": assignee.name, "email": assignee.email}
        if assignee else None,
        "isPublic": False,
        "isBookmarked": False,
        "isSubscribed": False,
        "hasSeen": False,
        "isUnhandled": _is_unhandled(data),
        "shareId": None,
        "subscriptionDetails": None,
        "numComments": num_comments,
        "userCount": users,
        "project": {"id": str(project.id), "slug": project.slug, "name": project.name, "platform": project.platform},
        "firstSeen": iso(group.first_seen),
        "lastSeen": iso(group.last_seen),
        "count": str(group.times_seen),
        "permalink": links.issue_page(group.id),
        "url": links.issue_api(group.id),
        "web_url": links.issue_page(group.id),
        "project_url": links.project_page(project.slug),
    }


# Sentry's initial priority of an issue, from its level (PriorityLevel: high, medium, low).
PRIORITY_OF_LEVEL = {"fatal": "high", "error": "high", "warning": "medium", "info": "low", "debug": "low"}


def _frame_metadata(data: dict) -> dict:
    """``filename`` and ``function`` of the top in-app frame of the event's main exception, as Sentry's metadata has."""
    exceptions = exceptions_of(data)
    top = top_in_app_frame(exceptions[-1]) if exceptions else None
    if top is None:
        return {}
    found = {"filename": top.get("filename") or top.get("abs_path"), "function": top.get("function")}
    return {key: str(value) for key, value in found.items() if value}


def _is_unhandled(data: dict) -> bool:
    """Whether the event's exception reached no handler (the SDK sets ``mechanism.handled: false``)."""
    return any(isinstance(value.get("mechanism"), dict) and value["mechanism"].get("handled") is False
               for value in exceptions_of(data))


def user_count(group_id: int) -> int:
    """Distinct users the issue's events came from (a HyperLogLog counted by the ingest job); 0 without Redis."""
    try:
        return int(get_redis().pfcount(keys.group_users(group_id)))
    except RedisError:
        return 0


def serialize_event(event: Event, base_url: str) -> dict:
    """Return the event as stored plus ``url``, ``web_url``, ``issue_url`` and ``issue_id``."""
    links, project = links_for_project(base_url, event.project_id)
    return {
        **event.data,
        "project": project.id,
        "received": event.received.timestamp(),
        "url": links.event_api(project.slug, event.event_id),
        "web_url": links.event_page(event.group_id, event.event_id),
        "issue_url": links.issue_api(event.group_id),
        "issue_id": str(event.group_id),
    }


def serialize_comment(comment: Comment, group: Group, base_url: str) -> dict:
    project = get_from_cache(Project, group.project_id)
    return {
        "comment_id": comment.id,  # integers, as Sentry's comment webhooks carry them
        "issue_id": group.id,
        "project_slug": project.slug,
        "timestamp": iso(comment.date_updated),
        "comment": comment.text,
    }


STATUS_METHOD_MANUAL, STATUS_METHOD_RULE_TRIGGERED = 1, 3


def serialize_incident(incident: Incident, base_url: str, status: str, metric_value: int,
                       status_method: int = STATUS_METHOD_RULE_TRIGGERED) -> dict:
    """Return ``data`` of a ``metric_alert.*`` webhook for the incident at ``status`` with ``metric_value``."""
    rule = incident.alert_rule
    links, project = links_for_project(base_url, rule.project_id)
    installations = _installation_uuids([action["sentry_app_id"] for action in rule.actions])
    triggers = []
    for label, threshold in (("critical", rule.critical_threshold), ("warning", rule.warning_threshold)):
        if threshold is None:
            continue
        triggers.append({
            "label": label,
            "threshold_type": 0,  # above
            "alert_threshold": threshold,
            "resolve_threshold": rule.effective_resolve_threshold,
            "actions": [
                {"type": "sentry_app", "sentry_app_id": action["sentry_app_id"],
                 "sentry_app_installation_uuid": installations.get(action["sentry_app_id"]),
                 "settings": action.get("settings") or []}
                for action in rule.actions
            ],
        })
    title = f"{status.capitalize()}: {rule.name}"
    value_text = f"{metric_value} events in the last {rule.time_window_minutes} minutes"
    return {
        "metric_alert": {
            "id": str(incident.id),
            "identifier": str(incident.identifier),
            "title": incident.title,
            # Sentry's IncidentStatus: 1 open, 2 closed (what a resolve is), 10 warning, 20 critical.
            "status": {"resolved": 2, "closed": 2, "warning": 10, "critical": 20}.get(status, 1),
            "status_text": status,
            # How the status was reached, Sentry's IncidentStatusMethod: 1 by hand, 3 the rule triggered.
            "status_method": status_method,
            "type": 2,  # Sentry's IncidentType.ALERT_TRIGGERED
            "organization_id": str(project.organization_id),
            "date_created": iso(incident.date_started),
            "date_started": iso(incident.date_started),
            "date_closed": iso(incident.date_closed),
            "date_detected": iso(incident.date_started),
            "projects": [project.slug],
            "alert_rule": {
                "id": str(rule.id),
                "name": rule.name,
                "organization_id": str(project.organization_id),
                "status": 0,  # Sentry's AlertRuleStatus.PENDING: the rule is active
                "aggregate": "count()",
                "dataset": "events",
                "query": "",
                "environment": None,
                "projects": [project.slug],
                "include_all_projects": False,
                "time_window": rule.time_window_minutes,
                "resolution": 1,
                "threshold_period": 1,
                "resolve_threshold": rule.effective_resolve_threshold,
                "threshold_type": 0,
                "created_by": None,
                "date_created": iso(rule.date_added),
                "date_modified": iso(rule.date_added),
                "triggers": triggers,
            },
        },
        "description_text": value_text,
        "description_title": title,
        "web_url": links.incident_page(incident.identifier),
    }


def _installation_uuids(sentry_app_ids: list[int]) -> dict[int, str]:
    rows = db.session.execute(
        select(SentryAppInstallation.sentry_app_id, SentryAppInstallation.uuid)
        .where(SentryAppInstallation.sentry_app_id.in_(sentry_app_ids))
    )
    return dict(rows.all())
