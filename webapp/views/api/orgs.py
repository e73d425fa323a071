"""Organisation resources through the API: issues (read, triage), events, the audit log."""

from __future__ import annotations

from flask import current_app, jsonify, request
from sqlalchemy import select

from ... import MAX_ROW_ID
from ...audit import EVENTS, describe, event_label
from ...audit_search import AuditFilterError, audit_statement, parse_filters
from ...dispatch.serializers import serialize_event, serialize_issue, serialize_issues
from ...extensions import db
from ...input_guard import parse_row_id
from ...sentry_search import SearchError, issue_search
from ...models import ISSUE_STATUSES, Event, User
from ...workflow import WorkflowError, assign, set_status
from ..helpers import get_group_or_404, get_project_or_404
from . import ApiError, api_user, bp, field, flag, json_body, org_for, paged_query, require_manager
from .apps import iso


@bp.route("/projects/<org_slug>/<project_slug>/events/<event_id>/")
def event(org_slug, project_slug, event_id):
    organization, _ = org_for(org_slug)
    project = get_project_or_404(organization, project_slug)
    row = db.session.scalar(select(Event).where(Event.project_id == project.id, Event.event_id == event_id))
    if row is None:
        raise ApiError(404, "The requested resource does not exist.")
    return jsonify(serialize_event(row, current_app.config["BASE_URL"]))


@bp.route("/organizations/<org_slug>/issues/")
def issues(org_slug):
    """The organisation's issues: ``query`` (default ``is:unresolved``), ``project`` ids, ``statsPeriod``, ``sort``."""
    organization, _ = org_for(org_slug)
    project_ids = None
    if request.args.getlist("project"):
        project_ids = [parse_row_id(value) for value in request.args.getlist("project")]
        if None in project_ids:
            raise ApiError(400, f"project: expected project ids (whole numbers from 1 to {MAX_ROW_ID}).")
    return _issue_page(organization, project_ids)


@bp.route("/projects/<org_slug>/<project_slug>/issues/")
def project_issues(org_slug, project_slug):
    organization, _ = org_for(org_slug)
    return _issue_page(organization, [get_project_or_404(organization, project_slug).id])


def _issue_page(organization, project_ids):
    try:
        statement = issue_search(organization.id, request.args.get("query", "is:unresolved"), project_ids=project_ids,
                                 period=request.args.get("statsPeriod"), sort=request.args.get("sort", "date"))
    except SearchError as exc:
        raise ApiError(400, str(exc)) from None
    return paged_query(statement, lambda groups: serialize_issues(groups, current_app.config["BASE_URL"]))


@bp.route("/organizations/<org_slug>/issues/<int:group_id>/events/")
def issue_events(org_slug, group_id):
    """The issue's events, newest first, as Sentry's event list shows them (``full=true``: whole events)."""
    organization, _ = org_for(org_slug)
    group = get_group_or_404(organization, group_id)
    full = flag("full")
    statement = select(Event).where(Event.group_id == group.id).order_by(Event.id.desc())
    base_url = current_app.config["BASE_URL"]
    return paged_query(statement, lambda events: [
        serialize_event(event, base_url) if full else _event_summary(event) for event in events])


def _event_summary(event: Event) -> dict:
    data = event.data
    return {
        "id": event.event_id,
        "eventID": event.event_id,
        "groupID": str(event.group_id),
        "projectID": str(event.project_id),
        "title": event.title,
        "message": data.get("message") or "",
        "culprit": data.get("culprit") or "",
        "platform": data.get("platform"),
        "event.type": data.get("type", "error"),
        "dateCreated": iso(event.received),
        "tags": [{"key": key, "value": value} for key, value in data.get("tags") or []],
        "user": data.get("user") if isinstance(data.get("user"), dict) else None,
    }


@bp.route("/organizations/<org_slug>/issues/<int:group_id>/", methods=["GET"])
def issue(org_slug, group_id):
    organization, _ = org_for(org_slug)
    return jsonify(serialize_issue(get_group_or_404(organization, group_id), current_app.config["BASE_URL"]))


@bp.route("/organizations/<org_slug>/issues/<int:group_id>/", methods=["PUT"])
def update_issue(org_slug, group_id):
    """Change ``status`` and/or ``assignedTo`` (a member's id or email, or null); each change sends its webhook."""
    organization, _ = org_for(org_slug)
    group = get_group_or_404(organization, group_id)
    body = json_body()
    status = field(body, "status", str)
    if status is not None and status not in ISSUE_STATUSES:
        raise ApiError(400, f"status: must be one of {', '.join(ISSUE_STATUSES)}.")
    assignee = _assignee(body, organization.id) if "assignedTo" in body else False
    try:
        if status is not None:
            set_status(group, status, api_user())
        if assignee is not False:
            assign(group, assignee, api_user())
    except WorkflowError as exc:
        db.session.rollback()
        raise ApiError(400, str(exc)) from None
    db.session.refresh(group)
    return jsonify(serialize_issue(group, current_app.config["BASE_URL"]))


def _assignee(body: dict, organization_id: int) -> User | None:
    value = field(body, "assignedTo", (str, int), nullable=True)
    if value is None or value == "":
        return None
    if isinstance(value, int) or value.isdigit():  # an id: "²" and 10**20 are digits too, but no row's
        user_id = parse_row_id(value)
        user = db.session.get(User, user_id) if user_id is not None else None
    else:
        user = db.session.scalar(select(User).where(User.email == str(value).lower()))
    if user is None or user.role_in(organization_id) is None:
        raise ApiError(400, "assignedTo: must be the id or email of a member of the organisation.")
    return user


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
