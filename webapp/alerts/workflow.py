"""What a person does to an issue: resolve, ignore, unresolve, assign, comment.

Each change commits with its webhooks and its entry in the issue's activity.
"""

from __future__ import annotations

import json

from flask import current_app
from sqlalchemy import delete, or_, update

from ..core.extensions import db
from ..dispatch.fanout import notify_resource_change
from ..dispatch.payloads import user_actor
from ..models import ISSUE_STATUSES, Activity, Comment, Group, User, utcnow
from .issue_status import StatusChange, StatusChangeError, new_values, status_details
from .serializers import serialize_comment, serialize_issue

# What says how an issue is resolved or ignored; bookkeeping columns (when, counts at the time) are not compared.
COMPARED = ("status", "resolution_type", "resolution_release", "ignore_until", "ignore_count", "ignore_window",
            "ignore_user_count", "ignore_until_escalating")


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


def set_status(group: Group, change: StatusChange | str, actor: User) -> bool:
    """Resolve, ignore or unresolve the issue as ``change`` says; send ``issue.<status>`` if anything changed.

    Return whether it changed. Re-resolving or re-ignoring another way (in a release, for an hour) is a change.
    """
    if isinstance(change, str):
        if change not in ISSUE_STATUSES:
            raise WorkflowError(f"Unknown status {change!r}; use one of {', '.join(ISSUE_STATUSES)}.")
        change = StatusChange(change)
    values = check_status_change(group, change)
    # The same status and details already: nothing to send (two people pressing Resolve send one webhook).
    differs = or_(*(getattr(Group, name).is_distinct_from(values[name]) for name in COMPARED))
    changed = db.session.execute(update(Group).where(Group.id == group.id, differs).values(**values)).rowcount == 1
    if changed:  # the webhooks commit with the change (the outbox), never one without the other
        db.session.refresh(group)
        data = {"issue": serialize_issue(group, current_app.config["BASE_URL"])}
        if change.status == "resolved":
            data["resolution_type"] = change.resolution_type  # as Sentry: now, in_next_release or in_release
        notify_resource_change(_organization_id(group), f"issue.{change.status}", data, user_actor(actor))
        _record(group, f"set_{change.status}", actor, **status_details(group))
    db.session.commit()
    return changed


def check_status_change(group: Group, change: StatusChange) -> dict:
    """Return the issue's columns after ``change``; WorkflowError (nothing changed) when it cannot be made."""
    try:
        return new_values(group, change)
    except StatusChangeError as exc:
        raise WorkflowError(str(exc)) from None


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
