"""Every way of resolving or ignoring an issue, as Sentry's issue update takes them, and what each shows.

A person resolves an issue now, in the next release, or in a release; or ignores (archives) it forever, until
it escalates, for a time, until more events (optionally within a window) or until more users. ``read_change``
turns Sentry's fields into a ``StatusChange``, ``new_values`` into the issue's columns; ``status_details`` and
``substatus`` say what an issue shows. What brings an issue back is in ``issue_reopening``; the dashboard's words
are in ``issue_status_text``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from redis.exceptions import RedisError
from sqlalchemy import func, select

from ..core import keys
from ..core.extensions import db
from ..core.redis_store import get_redis
from ..models import ISSUE_STATUSES, Event, Group, Release, utcnow

MAX_WINDOW = 7 * 24 * 60  # minutes: Sentry's longest ignoreWindow
MAX_MINUTES = 10 * 366 * 24 * 60  # ten years: ignoreDuration beyond this is a mistake
FRESH_DAYS = 7  # Sentry calls an issue "regressed" or "escalating" this long after it came back
# Archived until escalating: Hookline has no forecast; an hour with ten times the archived week's hourly mean
# (and at least ESCALATING_MIN events) is an escalation.
ESCALATING_FACTOR, ESCALATING_MIN = 10, 10
STATUS_ALIASES = {"muted": "ignored", "resolvedInNextRelease": "resolved"}  # Sentry's other names
RESOLVE_DETAILS = ("inNextRelease", "inRelease")
IGNORE_DETAILS = ("ignoreDuration", "snoozeDuration", "ignoreCount", "ignoreWindow", "ignoreUserCount",
                  "ignoreUserWindow", "ignoreUntilEscalating")
NOT_SUPPORTED = {
    "inCommit": "Hookline does not know commits; resolve in a release (inRelease) or in the next release.",
    "inUpcomingRelease": "Hookline does not know upcoming releases; use inNextRelease.",
    "ignoreUserWindow": "Hookline counts an issue's users since it was ignored, not within a window; "
                        "send ignoreUserCount alone.",
}
IGNORED_SUBSTATUSES = ("archived_forever", "archived_until_escalating", "archived_until_condition_met")
# An issue's resolution and snooze, as they are when it is unresolved.
CLEARED_STATUS_DETAILS = {"resolution_type": None, "resolution_release": None, "ignore_until": None,
                          "ignore_count": None, "ignore_window": None, "ignore_user_count": None,
                          "ignore_base_count": None, "ignore_base_users": None, "ignore_until_escalating": False}


class StatusChangeError(ValueError):
    """The status change cannot be made as asked; the message names the field and says why."""


@dataclass(frozen=True)
class StatusChange:
    """What a person asks of an issue's status; the fields beyond ``status`` say how it is resolved or ignored."""

    status: str
    in_next_release: bool = False
    in_release: str | None = None
    ignore_minutes: int | None = None
    ignore_count: int | None = None
    ignore_window: int | None = None
    ignore_user_count: int | None = None
    until_escalating: bool = False

    @property
    def resolution_type(self) -> str | None:
        """Sentry's ``resolution_type`` of an ``issue.resolved`` webhook."""
        if self.status != "resolved":
            return None
        return "in_next_release" if self.in_next_release else "in_release" if self.in_release else "now"


def _minutes(name: str, value, most: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise StatusChangeError(f"{name}: must be a whole number from 1 to {most}.")
    return value


def read_change(status: str | None, substatus: str | None, details: dict) -> StatusChange | None:
    """Read Sentry's ``status``, ``substatus`` and ``statusDetails`` (or the same fields at the top level).

    Return None when nothing about the status is asked.
    """
    for name in details:
        if name in NOT_SUPPORTED:
            raise StatusChangeError(f"{name}: {NOT_SUPPORTED[name]}")
        if name not in RESOLVE_DETAILS + IGNORE_DETAILS:
            raise StatusChangeError(f"statusDetails: {name} is not one of Sentry's status details.")
    if status is None:
        if details or substatus:
            raise StatusChangeError("status: say which status the details are for (resolved or ignored).")
        return None
    asked = STATUS_ALIASES.get(status, status)
    if asked not in ISSUE_STATUSES:
        raise StatusChangeError(f"status: must be one of {', '.join(ISSUE_STATUSES)}, resolvedInNextRelease or "
                                "muted.")
    if asked == "resolved":
        return _resolution(status, substatus, details)
    if asked == "ignored":
        return _snooze(substatus, details)
    if details:
        raise StatusChangeError("statusDetails: an unresolved issue has no details; send status alone.")
    if substatus not in (None, "ongoing"):
        raise StatusChangeError("substatus: an unresolved issue's substatus follows from its events (new, regressed, "
                                "escalating); send ongoing or leave it out.")
    return StatusChange("unresolved")


def _resolution(status: str, substatus: str | None, details: dict) -> StatusChange:
    ignoring = [name for name in details if name in IGNORE_DETAILS]
    if ignoring or substatus:
        raise StatusChangeError(f"statusDetails: {', '.join(ignoring) or 'substatus'} is for ignoring an issue, "
                                "not for resolving it.")
    next_release = status == "resolvedInNextRelease" or "inNextRelease" in details
    if "inNextRelease" in details and details["inNextRelease"] is not True:
        raise StatusChangeError("inNextRelease: must be true.")
    release = details.get("inRelease")
    if release is not None and (not isinstance(release, str) or not release.strip() or len(release) > 200):
        raise StatusChangeError("inRelease: must be a release version (text of at most 200 characters).")
    if next_release and release is not None:
        raise StatusChangeError("statusDetails: inNextRelease and inRelease cannot both be given; choose one.")
    return StatusChange("resolved", in_next_release=next_release, in_release=release)


def _snooze(substatus: str | None, details: dict) -> StatusChange:
    resolving = [name for name in details if name in RESOLVE_DETAILS]
    if resolving:
        raise StatusChangeError(f"statusDetails: {', '.join(resolving)} is for resolving an issue, not for "
                                "ignoring it.")
    if substatus is not None and substatus not in IGNORED_SUBSTATUSES:
        raise StatusChangeError(f"substatus: an ignored issue's substatus is one of {', '.join(IGNORED_SUBSTATUSES)}.")
    escalating = details.get("ignoreUntilEscalating", False)
    if not isinstance(escalating, bool):
        raise StatusChangeError("ignoreUntilEscalating: must be true or false.")
    minutes = _minutes("ignoreDuration", details.get("ignoreDuration", details.get("snoozeDuration")), MAX_MINUTES)
    count = _minutes("ignoreCount", details.get("ignoreCount"), 10**9)
    window = _minutes("ignoreWindow", details.get("ignoreWindow"), MAX_WINDOW)
    users = _minutes("ignoreUserCount", details.get("ignoreUserCount"), 10**9)
    if window is not None and count is None:
        raise StatusChangeError("ignoreWindow: give ignoreCount too (that many events within the window).")
    conditions = minutes is not None or count is not None or users is not None
    escalating = escalating or substatus == "archived_until_escalating"
    if escalating and conditions:
        raise StatusChangeError("statusDetails: ignoreUntilEscalating cannot be combined with ignoreDuration, "
                                "ignoreCount or ignoreUserCount; choose one way.")
    if substatus == "archived_forever" and conditions:
        raise StatusChangeError("substatus: archived_forever takes no ignoreDuration, ignoreCount or ignoreUserCount.")
    if substatus == "archived_until_condition_met" and not conditions:
        raise StatusChangeError("substatus: archived_until_condition_met needs ignoreDuration, ignoreCount or "
                                "ignoreUserCount.")
    return StatusChange("ignored", ignore_minutes=minutes, ignore_count=count, ignore_window=window,
                        ignore_user_count=users, until_escalating=escalating)


def newest_release(project_id: int) -> Release | None:
    return db.session.scalar(select(Release).where(Release.project_id == project_id)
                             .order_by(Release.id.desc()).limit(1))


def release_named(project_id: int, version: str) -> Release | None:
    """The project's release ``version``; ``latest`` is its newest, as Sentry takes it."""
    if version == "latest":
        return newest_release(project_id)
    return db.session.scalar(select(Release).where(Release.project_id == project_id, Release.version == version))


def new_values(group: Group, change: StatusChange) -> dict:
    """The columns of ``group`` after ``change``; StatusChangeError when its project lacks the release asked.

    Nothing is written: the caller checks every issue before it changes any.
    """
    values = {"status": change.status, "resolved_at": None, "regressed_at": None, "escalated_at": None,
              **CLEARED_STATUS_DETAILS}
    now = utcnow()
    if change.status == "resolved":
        values.update(resolved_at=now, resolution_type=change.resolution_type)
        if change.in_next_release:
            release = newest_release(group.project_id)
            if release is None:
                raise StatusChangeError(f"inNextRelease: project {group.project.slug} has sent no release yet, so "
                                        "there is no next one; resolve it now or send events with a release.")
            values["resolution_release"] = release.version
        elif change.in_release:
            release = release_named(group.project_id, change.in_release.strip())
            if release is None:
                raise StatusChangeError(f"inRelease: project {group.project.slug} has no release "
                                        f"{change.in_release.strip()!r} (a release is known once an event names it).")
            values["resolution_release"] = release.version
    elif change.status == "ignored":
        if change.until_escalating:
            week = db.session.scalar(select(func.count()).select_from(Event).where(
                Event.group_id == group.id, Event.received >= now - timedelta(days=7)))
            values.update(ignore_until_escalating=True, ignore_window=60,
                          ignore_count=max(ESCALATING_MIN, -(-week * ESCALATING_FACTOR // (7 * 24))))
        else:
            until = now + timedelta(minutes=change.ignore_minutes) if change.ignore_minutes else None
            values.update(ignore_until=until,
                          ignore_count=change.ignore_count, ignore_window=change.ignore_window,
                          ignore_user_count=change.ignore_user_count)
            if change.ignore_count and not change.ignore_window:
                values["ignore_base_count"] = group.times_seen
            if change.ignore_user_count:
                values["ignore_base_users"] = users_of(group.id)
    return values


def users_of(group_id: int) -> int:
    """Distinct users of the issue's events (the ingest job's HyperLogLog); 0 without Redis."""
    try:
        return int(get_redis().pfcount(keys.group_users(group_id)))
    except RedisError:
        return 0


def status_details(group: Group, users: int | None = None) -> dict:
    """Sentry's ``statusDetails`` of the issue; counts left to wait for, as Sentry shows them; no null fields."""
    if group.status == "resolved":
        if group.resolution_type == "in_next_release":
            return {"inNextRelease": True}
        if group.resolution_type == "in_release":
            return {"inRelease": group.resolution_release}
        return {}
    if group.status != "ignored":
        return {}
    if group.ignore_until_escalating:
        return {"ignoreUntilEscalating": True}
    details = {}
    if group.ignore_count is not None:
        details["ignoreCount"] = (group.ignore_count if group.ignore_window
                                  else max(0, group.ignore_count - (group.times_seen - (group.ignore_base_count or 0))))
    if group.ignore_until is not None:
        details["ignoreUntil"] = group.ignore_until.isoformat(timespec="milliseconds") + "Z"
    if group.ignore_user_count is not None:
        seen = (users_of(group.id) if users is None else users) - (group.ignore_base_users or 0)
        details["ignoreUserCount"] = max(0, group.ignore_user_count - seen)
    if group.ignore_window is not None:
        details["ignoreWindow"] = group.ignore_window
    return details


def substatus(group: Group) -> str | None:
    """Sentry's substatus: new, ongoing, regressed or escalating while unresolved; archived_* while ignored."""
    if group.status == "ignored":
        if group.ignore_until_escalating:
            return "archived_until_escalating"
        if group.ignore_until or group.ignore_count or group.ignore_user_count:
            return "archived_until_condition_met"
        return "archived_forever"
    if group.status != "unresolved":
        return None
    fresh = utcnow() - timedelta(days=FRESH_DAYS)
    if group.escalated_at is not None and group.escalated_at > fresh:
        return "escalating"
    if group.regressed_at is not None and group.regressed_at > fresh:
        return "regressed"
    return "new" if group.times_seen <= 1 else "ongoing"


def recent_releases(project_id: int, limit: int = 20) -> list[str]:
    """The project's newest releases, newest first (the dashboard's choices)."""
    return list(db.session.scalars(select(Release.version).where(Release.project_id == project_id)
                                   .order_by(Release.id.desc()).limit(limit)))
