"""Issues through the API, at Sentry's paths: lists with search, details, and triage of one or many issues."""

from __future__ import annotations

import re

from flask import jsonify, request
from sqlalchemy import select

from ...alerts.issue_search import SearchError, issue_search
from ...alerts.issue_status import StatusChange, StatusChangeError, read_change, status_details
from ...alerts.workflow import WorkflowError, assign, check_status_change, set_status
from ...core.extensions import db
from ...core.input_guard import MAX_ROW_ID, parse_row_id
from ...models import Group, Organization, Project, User
from . import ApiError, api_user, bp, field, flag, json_body, org_for, page_limit, paged_query, project_for, role_in
from .shapes import api_issue, api_issues

SHORT_ID = re.compile(r"^([A-Za-z0-9_-]+)-([0-9]{1,9})$")
# Fields of Sentry's issue update Hookline cannot keep; each is refused with the reason, never ignored.
NOT_KEPT = {
    "hasSeen": "Hookline does not keep who has seen an issue.",
    "isBookmarked": "Hookline has no bookmarks.",
    "priority": "Hookline derives an issue's priority from its level; it cannot be set.",
    "isPublic": "Hookline does not share issues publicly.",
    "isSubscribed": "Hookline has no issue subscriptions.",
    "merge": "Hookline cannot merge issues.",
    "discard": "Hookline cannot discard issues.",
    "inbox": "Hookline's inbox follows the status; set status instead.",
}
# Sentry's snooze fields, which it also takes beside statusDetails (its CLI sends snoozeDuration: null).
TOP_LEVEL_DETAILS = ("ignoreDuration", "ignoreCount", "ignoreWindow", "ignoreUserCount", "ignoreUserWindow",
                     "snoozeDuration")


@bp.route("/organizations/<org_slug>/issues/")
def issues(org_slug):
    """The organisation's issues: ``query`` (default ``is:unresolved``), ``project`` ids, ``statsPeriod``, ``sort``,
    ``limit``, ``shortIdLookup``."""
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
    return _issue_page(organization, [project_for(organization, project_slug).id])


def _issue_page(organization: Organization, project_ids: list[int] | None):
    limit = page_limit()
    query = request.args.get("query", "is:unresolved")
    if flag("shortIdLookup") and SHORT_ID.match(query.strip()):
        found = _by_short_id(organization, query.strip())
        if found is not None and (project_ids is None or found.project_id in project_ids):
            return paged_query(select(Group).where(Group.id == found.id), api_issues, limit)
    try:
        statement = issue_search(organization.id, query, project_ids=project_ids,
                                 period=request.args.get("statsPeriod"), sort=request.args.get("sort", "date"))
    except SearchError as exc:
        raise ApiError(400, str(exc)) from None
    return paged_query(statement, api_issues, limit)


def _by_short_id(organization: Organization, short_id: str) -> Group | None:
    """The issue a qualified short id (``WEB-12``) names in the organisation, if any."""
    slug, number = SHORT_ID.match(short_id).groups()
    return db.session.scalar(select(Group).join(Project, Project.id == Group.project_id).where(
        Project.organization_id == organization.id, Project.slug == slug.lower(), Group.short_id == int(number)))


def group_for(organization: Organization, issue_id: str) -> Group:
    """The organisation's issue by id, or by short id (``WEB-12``) as Sentry also takes; 404 otherwise."""
    group_id = parse_row_id(issue_id)
    group = db.session.get(Group, group_id) if group_id is not None else None
    if group is None and SHORT_ID.match(issue_id):
        group = _by_short_id(organization, issue_id)
    if group is None or group.project.organization_id != organization.id:
        raise ApiError(404, "The requested resource does not exist.")
    return group


def _group_anywhere(issue_id: str) -> Group:
    """An issue by id alone (Sentry's /issues/<id>/), if it is in one of the caller's organisations."""
    group_id = parse_row_id(issue_id)
    group = db.session.get(Group, group_id) if group_id is not None else None
    if group is None:
        raise ApiError(404, "The requested resource does not exist.")
    role_in(group.project.organization_id)
    return group


@bp.route("/organizations/<org_slug>/issues/<issue_id>/", methods=["GET"])
def issue(org_slug, issue_id):
    organization, _ = org_for(org_slug)
    return jsonify(api_issue(group_for(organization, issue_id)))


@bp.route("/issues/<issue_id>/", methods=["GET"])
def issue_by_id(issue_id):
    return jsonify(api_issue(_group_anywhere(issue_id)))


@bp.route("/organizations/<org_slug>/issues/<issue_id>/", methods=["PUT"])
def update_issue(org_slug, issue_id):
    """Change ``status`` and/or ``assignedTo``; each change sends its webhook. Answers the issue."""
    organization, _ = org_for(org_slug)
    return _update_one(group_for(organization, issue_id))


@bp.route("/issues/<issue_id>/", methods=["PUT"])
def update_issue_by_id(issue_id):
    return _update_one(_group_anywhere(issue_id))


def _update_one(group: Group):
    change, assignee = read_update(json_body(), group.project.organization_id)
    apply_update([group], change, assignee)
    db.session.refresh(group)
    return jsonify({key: value for key, value in api_issue(group).items() if key != "activity"})


@bp.route("/organizations/<org_slug>/issues/", methods=["PUT"])
def bulk_update_issues(org_slug):
    """Sentry's bulk mutate: ``?id=1&id=2`` names the issues; the body says what changes, as for one issue."""
    organization, _ = org_for(org_slug)
    return _bulk_update(organization, None)


@bp.route("/projects/<org_slug>/<project_slug>/issues/", methods=["PUT"])
def bulk_update_project_issues(org_slug, project_slug):
    organization, _ = org_for(org_slug)
    return _bulk_update(organization, project_for(organization, project_slug))


def _bulk_update(organization: Organization, project: Project | None):
    """1. read the ids and the body (any bad value: 400, nothing changed); 2. apply; 3. answer what changed."""
    groups = _groups_named(organization, project)
    change, assignee = read_update(json_body(), organization.id)
    apply_update(groups, change, assignee)
    answer = {"isPublic": False, "statusDetails": {}}
    if change is not None:
        db.session.refresh(groups[0])
        answer.update(status=change.status, statusDetails=status_details(groups[0]))
    if assignee is not False:
        answer["assignedTo"] = None if assignee is None else {
            "type": "user", "id": str(assignee.id), "name": assignee.name or assignee.email, "email": assignee.email}
    return jsonify(answer)


def _groups_named(organization: Organization, project: Project | None) -> list[Group]:
    raw_ids = request.args.getlist("id")
    if not raw_ids:
        raise ApiError(400, "id: name the issues to change (?id=1&id=2); Hookline does not change issues by search.")
    ids = [parse_row_id(value) for value in raw_ids]
    if None in ids:
        raise ApiError(400, f"id: expected issue ids (whole numbers from 1 to {MAX_ROW_ID}).")
    statement = select(Group).join(Project, Project.id == Group.project_id).where(
        Project.organization_id == organization.id, Group.id.in_(ids))
    if project is not None:
        statement = statement.where(Group.project_id == project.id)
    groups = list(db.session.scalars(statement.order_by(Group.id)))
    missing = sorted(set(ids) - {group.id for group in groups})
    if missing:
        raise ApiError(404, f"id: no issue {', '.join(map(str, missing))} here.")
    return groups


def read_update(body: dict, organization_id: int) -> tuple[StatusChange | None, User | None | bool]:
    """Read an issue update: (the status change or None, assignee, None to unassign, or False to leave it).

    400 for anything Hookline cannot do, before anything changes.
    """
    for name in body:
        if name in NOT_KEPT:
            raise ApiError(400, f"{name}: {NOT_KEPT[name]}")
        if name not in ("status", "substatus", "assignedTo", "statusDetails", *TOP_LEVEL_DETAILS):
            raise ApiError(400, f"{name}: not a field of an issue update; Hookline takes status, substatus, "
                                "statusDetails and assignedTo.")
    details = {**{name: body[name] for name in TOP_LEVEL_DETAILS if name in body},
               **(field(body, "statusDetails", dict) or {})}
    try:
        change = read_change(field(body, "status", str), field(body, "substatus", str, nullable=True),
                             {name: value for name, value in details.items() if value is not None})
    except StatusChangeError as exc:
        raise ApiError(400, str(exc)) from None
    assignee = _assignee(body, organization_id) if "assignedTo" in body else False
    return change, assignee


def apply_update(groups: list[Group], change: StatusChange | None, assignee: User | None | bool) -> None:
    """Check every issue can take the change, then make it; a refusal (400) changes nothing."""
    if change is not None and (change.in_next_release or change.in_release) and \
            len({group.project_id for group in groups}) > 1:
        raise ApiError(400, "statusDetails: resolving in a release is for issues of one project; these are of "
                            "several.")
    try:
        if change is not None:
            for group in groups:
                check_status_change(group, change)
        for group in groups:
            if change is not None:
                set_status(group, change, api_user())
            if assignee is not False:
                assign(group, assignee, api_user())
    except WorkflowError as exc:
        db.session.rollback()
        raise ApiError(400, str(exc)) from None


def _assignee(body: dict, organization_id: int) -> User | None:
    """``assignedTo``: ``user:<id>``, a user id, a username or email (Hookline's usernames are emails), or null."""
    value = field(body, "assignedTo", (str, int), nullable=True)
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.startswith("team:"):
        raise ApiError(400, "assignedTo: Hookline has no teams; assign a member (user:<id>, or an email).")
    if isinstance(value, str):
        value = value.removeprefix("user:")
    if isinstance(value, int) or value.isdigit():  # an id: "²" and 10**20 are digits too, but no row's
        user_id = parse_row_id(value)
        user = db.session.get(User, user_id) if user_id is not None else None
    else:
        user = db.session.scalar(select(User).where(User.email == str(value).lower()))
    if user is None or user.role_in(organization_id) is None:
        raise ApiError(400, "assignedTo: must be the id or email of a member of the organisation (user:<id>, an "
                            "id, a username or an email).")
    return user
