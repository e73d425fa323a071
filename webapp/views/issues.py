"""Issues: the list, an issue with its events and comments, and the workflow buttons."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from ..dispatch.serializers import serialize_event
from ..extensions import db
from ..models import ISSUE_STATUSES, MANAGING_ROLES, Comment, Event, Group, Membership, Project, User
from ..workflow import WorkflowError, add_comment, assign, delete_comment, edit_comment, set_status
from .helpers import confirm_step, confirmed, get_group_or_404, get_org_or_404

bp = Blueprint("issues", __name__, url_prefix="/orgs/<org_slug>/issues")


@bp.route("")
@login_required
def list_view(org_slug):
    organization, _ = get_org_or_404(org_slug)
    status = request.args.get("status", "unresolved")
    query = (select(Group).join(Project).where(Project.organization_id == organization.id)
             .order_by(Group.last_seen.desc()).limit(200))
    if status in ISSUE_STATUSES:
        query = query.where(Group.status == status)
    groups = list(db.session.scalars(query))
    return render_template("issues/list.html", organization=organization, groups=groups, status=status,
                           statuses=ISSUE_STATUSES)


@bp.route("/<int:group_id>")
@login_required
def detail(org_slug, group_id):
    organization, role = get_org_or_404(org_slug)
    group = get_group_or_404(organization, group_id)
    events = db.session.scalars(select(Event).where(Event.group_id == group.id).order_by(Event.id.desc()).limit(50))
    comments = db.session.scalars(select(Comment).where(Comment.group_id == group.id).order_by(Comment.id))
    members = db.session.scalars(select(User).join(Membership).where(Membership.organization_id == organization.id)
                                 .order_by(User.email))
    return render_template("issues/detail.html", organization=organization, group=group, events=list(events),
                           comments=list(comments), members=list(members), can_moderate=role in MANAGING_ROLES)


@bp.route("/<int:group_id>/events/<event_id>")
@login_required
def event_detail(org_slug, group_id, event_id):
    organization, _ = get_org_or_404(org_slug)
    group = get_group_or_404(organization, group_id)
    event = db.session.scalar(select(Event).where(Event.group_id == group.id, Event.event_id == event_id))
    if event is None:
        abort(404)
    data = serialize_event(event, current_app.config["BASE_URL"])
    return render_template("issues/event.html", organization=organization, group=group, event=event, data=data)


@bp.route("/<int:group_id>/status", methods=["POST"])
@login_required
def change_status(org_slug, group_id):
    organization, _ = get_org_or_404(org_slug)
    group = get_group_or_404(organization, group_id)
    return _act(org_slug, group, lambda: set_status(group, request.form.get("status", ""), current_user))


@bp.route("/<int:group_id>/assign", methods=["POST"])
@login_required
def change_assignee(org_slug, group_id):
    organization, _ = get_org_or_404(org_slug)
    group = get_group_or_404(organization, group_id)
    raw = request.form.get("assignee", "")
    assignee = db.session.get(User, int(raw)) if raw.isdigit() else None
    if raw and assignee is None:
        abort(400, description="Unknown assignee.")
    return _act(org_slug, group, lambda: assign(group, assignee, current_user))


@bp.route("/<int:group_id>/comments", methods=["POST"])
@login_required
def create_comment(org_slug, group_id):
    organization, _ = get_org_or_404(org_slug)
    group = get_group_or_404(organization, group_id)
    return _act(org_slug, group, lambda: add_comment(group, request.form.get("text", ""), current_user))


@bp.route("/<int:group_id>/comments/<int:comment_id>", methods=["POST"])
@login_required
def update_comment(org_slug, group_id, comment_id):
    organization, _ = get_org_or_404(org_slug)
    group = get_group_or_404(organization, group_id)
    comment = _comment_or_404(group, comment_id)
    return _act(org_slug, group, lambda: edit_comment(comment, request.form.get("text", ""), current_user))


@bp.route("/<int:group_id>/comments/<int:comment_id>/delete", methods=["POST"])
@login_required
def remove_comment(org_slug, group_id, comment_id):
    organization, role = get_org_or_404(org_slug)
    group = get_group_or_404(organization, group_id)
    comment = _comment_or_404(group, comment_id)
    if not confirmed():
        return confirm_step("Delete this comment?", "Apps subscribed to comments get a comment.deleted webhook.",
                            "Delete comment", url_for("issues.detail", org_slug=org_slug, group_id=group.id), organization)
    return _act(org_slug, group, lambda: delete_comment(comment, current_user, role in MANAGING_ROLES))


def _comment_or_404(group: Group, comment_id: int) -> Comment:
    comment = db.session.get(Comment, comment_id)
    if comment is None or comment.group_id != group.id:
        abort(404)
    return comment


def _act(org_slug: str, group: Group, change):
    """Run one workflow change; a refused change is flashed, and the issue page is shown again."""
    try:
        change()
    except WorkflowError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return redirect(url_for("issues.detail", org_slug=org_slug, group_id=group.id), 303)
