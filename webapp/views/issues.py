"""Issues: the list, an issue with its events and activity, an event, and the workflow buttons."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from ..alerts.event_display import display_event, exception_chain
from ..alerts.issue_history import CHART_DAYS, activity_of, events_per_day
from ..alerts.issue_search import (
    SORT_LABELS, STATUS_CHOICES, IssueQuery, current_project, environments_of, search_issues,
)
from ..alerts.issue_status import StatusChange, StatusChangeError, read_change, recent_releases
from ..alerts.issue_status_text import change_done, details_in_words, status_summary
from ..alerts.serializers import serialize_event
from ..alerts.workflow import WorkflowError, add_comment, assign, delete_comment, display_name, edit_comment, set_status
from ..apps.projects import list_projects
from ..core.charts import count_bars_svg
from ..core.extensions import db
from ..core.input_guard import parse_row_id
from ..models import LEVELS, MANAGING_ROLES, Comment, Event, Group, Membership, User
from .helpers import confirm_step, confirmed, get_group_or_404, get_org_or_404

bp = Blueprint("issues", __name__, url_prefix="/orgs/<org_slug>/issues")


@bp.route("")
@login_required
def list_view(org_slug):
    organization, _ = get_org_or_404(org_slug)
    query = IssueQuery.from_args(request.args)
    projects = list_projects(organization.id)
    return render_template("issues/list.html", organization=organization, query=query,
                           result=search_issues(organization, query), projects=projects,
                           project=current_project(projects, query),
                           environments=environments_of(organization, query.project), statuses=STATUS_CHOICES,
                           levels=LEVELS, sorts=SORT_LABELS)


@bp.route("/<int:group_id>")
@login_required
def detail(org_slug, group_id):
    organization, role = get_org_or_404(org_slug)
    group = get_group_or_404(organization, group_id)
    events = list(db.session.scalars(select(Event).where(Event.group_id == group.id)
                                     .order_by(Event.received.desc(), Event.id.desc()).limit(50)))
    members = db.session.scalars(select(User).join(Membership).where(Membership.organization_id == organization.id)
                                 .order_by(User.email))
    days = events_per_day(group)
    return render_template("issues/detail.html", organization=organization, group=group, events=events,
                           latest_exceptions=exception_chain(events[0].data) if events else [],
                           activity=activity_of(group), members=list(members), can_moderate=role in MANAGING_ROLES,
                           days=days, chart_days=CHART_DAYS, releases=recent_releases(group.project_id),
                           status_summary=status_summary(group), details_in_words=details_in_words,
                           chart=count_bars_svg(days, 560, 80, f"Events per day, last {CHART_DAYS} days"))


@bp.route("/<int:group_id>/events/<event_id>")
@login_required
def event_detail(org_slug, group_id, event_id):
    organization, _ = get_org_or_404(org_slug)
    group = get_group_or_404(organization, group_id)
    event = db.session.scalar(select(Event).where(Event.group_id == group.id, Event.event_id == event_id))
    if event is None:
        abort(404)
    data = serialize_event(event, current_app.config["BASE_URL"])
    return render_template("issues/event.html", organization=organization, group=group, event=event, data=data,
                           display=display_event(data))


@bp.route("/<int:group_id>/status", methods=["POST"])
@login_required
def change_status(org_slug, group_id):
    """Resolve (now, in the next release, in a release), ignore (forever, until escalating, for a time, until more
    events or users) or unresolve, from the issue page's menus."""
    organization, _ = get_org_or_404(org_slug)
    group = get_group_or_404(organization, group_id)

    try:
        change = change_from_form(request.form)
    except StatusChangeError as exc:
        flash(str(exc), "error")
        return redirect(url_for("issues.detail", org_slug=org_slug, group_id=group.id), 303)
    return _act(org_slug, group, lambda: set_status(group, change, current_user),
                lambda changed: change_done(change) if changed else f"Already {change.status}.")


def change_from_form(form) -> StatusChange:
    """The menus' fields as Sentry's update fields: ``resolution`` now/next/release (+ ``release``), ``ignore``
    forever/escalating/duration/count/users (+ ``minutes``, ``count``, ``window``, ``users``)."""
    status, details = form.get("status", ""), {}
    choice = form.get("resolution") if status == "resolved" else form.get("ignore") if status == "ignored" else None
    if choice == "next":
        details["inNextRelease"] = True
    elif choice == "release":
        details["inRelease"] = form.get("release", "")
    elif choice == "escalating":
        details["ignoreUntilEscalating"] = True
    elif choice in ("duration", "count", "users"):
        field, name = {"duration": ("minutes", "ignoreDuration"), "count": ("count", "ignoreCount"),
                       "users": ("users", "ignoreUserCount")}[choice]
        details[name] = _whole(form.get(field, ""), field)
        if choice == "count" and form.get("window"):
            details["ignoreWindow"] = _whole(form["window"], "window")
    return read_change(status, None, details)


def _whole(raw: str, name: str) -> int:
    if not (raw.strip().isascii() and raw.strip().isdigit()) or len(raw.strip()) > 9:
        raise StatusChangeError(f"{name}: choose a whole number.")
    return int(raw)


@bp.route("/<int:group_id>/assign", methods=["POST"])
@login_required
def change_assignee(org_slug, group_id):
    organization, _ = get_org_or_404(org_slug)
    group = get_group_or_404(organization, group_id)
    raw = request.form.get("assignee", "")
    user_id = parse_row_id(raw)
    assignee = db.session.get(User, user_id) if user_id is not None else None
    if raw and assignee is None:
        abort(400, description="Unknown assignee.")
    return _act(org_slug, group, lambda: assign(group, assignee, current_user),
                lambda _: f"Assigned to {display_name(assignee)}." if assignee else "Unassigned.")


@bp.route("/<int:group_id>/comments", methods=["POST"])
@login_required
def create_comment(org_slug, group_id):
    organization, _ = get_org_or_404(org_slug)
    group = get_group_or_404(organization, group_id)
    return _act(org_slug, group, lambda: add_comment(group, request.form.get("text", ""), current_user),
                lambda _: "Comment added.")


@bp.route("/<int:group_id>/comments/<int:comment_id>", methods=["POST"])
@login_required
def update_comment(org_slug, group_id, comment_id):
    organization, _ = get_org_or_404(org_slug)
    group = get_group_or_404(organization, group_id)
    comment = _comment_or_404(group, comment_id)
    return _act(org_slug, group, lambda: edit_comment(comment, request.form.get("text", ""), current_user),
                lambda _: "Comment saved.")


@bp.route("/<int:group_id>/comments/<int:comment_id>/delete", methods=["POST"])
@login_required
def remove_comment(org_slug, group_id, comment_id):
    organization, role = get_org_or_404(org_slug)
    group = get_group_or_404(organization, group_id)
    comment = _comment_or_404(group, comment_id)
    if not confirmed():
        return confirm_step("Delete this comment?", "Apps subscribed to comments get a comment.deleted webhook.",
                            "Delete comment", url_for("issues.detail", org_slug=org_slug, group_id=group.id), organization)
    return _act(org_slug, group, lambda: delete_comment(comment, current_user, role in MANAGING_ROLES),
                lambda _: "Comment deleted.")


def _comment_or_404(group: Group, comment_id: int) -> Comment:
    comment = db.session.get(Comment, comment_id)
    if comment is None or comment.group_id != group.id:
        abort(404)
    return comment


def _act(org_slug: str, group: Group, change, done):
    """Run one workflow change and flash ``done(its result)``; a refused change flashes why.

    The issue page is shown again either way.
    """
    try:
        flash(done(change()), "success")
    except WorkflowError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return redirect(url_for("issues.detail", org_slug=org_slug, group_id=group.id), 303)
