"""What a person does to an issue: resolve, ignore, unresolve, assign, comment.

Each change commits with its webhooks and its entry in the issue's activity.
"""

from __future__ import annotations

import json

from flask import current_app
from sqlalchemy import delete, update

from .dispatch.fanout import notify_resource_change
from .dispatch.payloads import user_actor
from .dispatch.serializers import serialize_comment, serialize_issue
from .extensions import db
from .models import ISSUE_STATUSES, Activity, Comment, Group, User, utcnow


class WorkflowError(ValueError):
    """The change cannot be made as asked; the message says why."""


def _organization_id(group: Group) -> int:
    return group.project.organization_id


def display_name(user: User) -> str:
    return user.name or user.email


def _record(group: Group, kind: str, actor: User, comment_id: int | None = None, **data) -> None:
    """Add an entry to the issue's activity in the open transaction."""
    db.session.add(Activity(group_id=group.id, kind=kind, user_id=actor.id, comment_id=comment_id,
                            data_json=json.dumps(data), date=utcnow()))


def set_status(group: Group, status: str, actor: User) -> bool:
    """Move the issue to ``status``; send ``issue.<status>`` if it changed. Return whether it changed."""
    if status not in ISSUE_STATUSES:
        raise WorkflowError(f"Unknown status {status!r}; use one of {', '.join(ISSUE_STATUSES)}.")
    changed = db.session.execute(
        update(Group).where(Group.id == group.id, Group.status != status)
        .values(status=status, resolved_at=utcnow() if status == "resolved" else None, regressed_at=None)
    ).rowcount == 1
    if changed:  # the webhooks commit with the change (the outbox), never one without the other
        db.session.refresh(group)
        data = {"issue": serialize_issue(group, current_app.config["BASE_URL"])}
        if status == "resolved":
            data["resolution_type"] = "now"  # as Sentry: resolved now (not in a release or commit)
        notify_resource_change(_organization_id(group), f"issue.{status}", data, user_actor(actor))
        _record(group, f"set_{status}", actor)
    db.session.commit()
    return changed


def assign(group: Group, assignee: User | None, actor: User) -> None:
    """Assign the issue to a member of its organisation (None: unassign).

    An assignment sends ``issue.assigned`` with ``data.assignee``; unassigning sends nothing, as in Sentry.
    """
    if assignee is not None and assignee.role_in(_organization_id(group)) is None:
        raise WorkflowError("Issues can only be assigned to members of the organisation.")
    if assignee is not None and assignee.id != group.assignee_id:
        _record(group, "assigned", actor, assignee_id=assignee.id, assignee=display_name(assignee))
    elif assignee is None and group.assignee_id is not None:
        _record(group, "unassigned", actor)
    group.assignee_id = assignee.id if assignee else None
    db.session.flush()
    db.session.refresh(group)
    if assignee is not None:
        data = {"issue": serialize_issue(group, current_app.config["BASE_URL"]),
                "assignee": {"type": "user", "name": assignee.name, "id": assignee.id, "email": assignee.email}}
        notify_resource_change(_organization_id(group), "issue.assigned", data, user_actor(actor))
    db.session.commit()


def _clean_text(text: str) -> str:
    text = (text or "").replace("\r\n", "\n").strip()  # browsers send a textarea's line breaks as CRLF
    if not text:
        raise WorkflowError("A comment cannot be empty.")
    if len(text) > 5000:
        raise WorkflowError("A comment can be at most 5000 characters.")
    return text


def _notify_comment(event_type: str, comment: Comment, group: Group, actor: User) -> None:
    data = serialize_comment(comment, group, current_app.config["BASE_URL"])
    notify_resource_change(_organization_id(group), event_type, data, user_actor(actor))


def add_comment(group: Group, text: str, actor: User) -> Comment:
    now = utcnow()
    comment = Comment(group_id=group.id, user_id=actor.id, text=_clean_text(text), date_added=now, date_updated=now)
    db.session.add(comment)
    db.session.flush()
    _record(group, "comment", actor, comment_id=comment.id)
    _notify_comment("comment.created", comment, group, actor)
    db.session.commit()
    return comment


def edit_comment(comment: Comment, text: str, actor: User) -> None:
    if comment.user_id != actor.id:
        raise WorkflowError("Only the author can edit a comment.")
    comment.text = _clean_text(text)
    db.session.flush()
    _notify_comment("comment.updated", comment, db.session.get(Group, comment.group_id), actor)
    db.session.commit()


def delete_comment(comment: Comment, actor: User, may_moderate: bool) -> None:
    if comment.user_id != actor.id and not may_moderate:
        raise WorkflowError("Only the author, an owner or a manager can delete a comment.")
    group = db.session.get(Group, comment.group_id)
    data = serialize_comment(comment, group, current_app.config["BASE_URL"])
    db.session.execute(delete(Activity).where(Activity.comment_id == comment.id))
    db.session.delete(comment)
    notify_resource_change(_organization_id(group), "comment.deleted", data, user_actor(actor))
    db.session.commit()
