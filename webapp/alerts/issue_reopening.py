"""Whether a new event brings an issue back: a resolved one regresses, an ignored one's snooze ends.

Called by ``eventstore.store_event`` for every event, in its transaction: an issue neither resolved nor ignored
costs nothing; the releases events name are recorded here (a later row is a newer release).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..core import keys
from ..core.extensions import db
from ..core.redis_store import get_redis
from ..models import Activity, Event, Group, Release
from .issue_status import CLEARED_STATUS_DETAILS

logger = logging.getLogger(__name__)

KNOWN_RELEASES_MAX = 10_000


def known_releases() -> set[tuple[int, str]]:
    """(project id, version) of the releases this app has seen committed: their row exists, no INSERT is needed."""
    return current_app.extensions.setdefault("hookline.known_releases", set())


def record_release(project_id: int, version: str | None, now: datetime) -> None:
    """Note an event's release (already cleaned) among its project's, first seen now if new."""
    if not version:
        return
    known = known_releases()
    if (project_id, version) in known:
        return
    if len(known) >= KNOWN_RELEASES_MAX:
        known.clear()
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    db.session.execute(insert(Release).values(project_id=project_id, version=version, first_seen=now)
                       .on_conflict_do_nothing(index_elements=["project_id", "version"]))


def comes_back(group: Group, event: dict, release: str | None, now: datetime) -> bool:
    """Reopen a resolved issue the event regresses, or bring back an ignored one whose snooze it ends.

    The conditional UPDATE decides it atomically; an issue neither resolved nor ignored when it was read costs
    no statement. The change goes on the issue's activity (regression or escalating).
    """
    if group.status == "resolved" and regresses(group, release):
        kind, values = "regression", {"regressed_at": now, "escalated_at": None}
    elif group.status == "ignored" and snooze_ends(group, now, user_identity(event.get("user"))):
        kind, values = "escalating", {"escalated_at": now, "regressed_at": None}
    else:
        return False
    back = db.session.execute(
        update(Group).where(Group.id == group.id, Group.status == group.status)
        .values(status="unresolved", resolved_at=None, **values, **CLEARED_STATUS_DETAILS)
    ).rowcount == 1
    if back:
        db.session.add(Activity(group_id=group.id, kind=kind, date=now,
                                data_json=json.dumps({"event_id": event["event_id"]})))
    return back


def user_identity(user) -> str | None:
    """Who an event's user is, as Sentry counts users: id, else email, else username, else IP address.

    The ingest job counts the issue's users (its userCount) by it too, so a snooze until N more users counts alike.
    """
    if not isinstance(user, dict):
        return None
    for field in ("id", "email", "username", "ip_address"):
        if user.get(field) not in (None, ""):
            return f"{field}:{user[field]}"
    return None


def regresses(group: Group, release: str | None) -> bool:
    """Whether a new event of ``release`` reopens the resolved issue, as Sentry decides.

    Resolved now: any event. In the next release: an event of a release newer than the one current when it
    was resolved. In a release: an event of that release or a newer one. An event without a release leaves a
    release resolution alone. Newer means first seen later.
    """
    if group.resolution_type not in ("in_next_release", "in_release"):
        return True
    if not release:
        return False
    ids = dict(db.session.execute(select(Release.version, Release.id).where(
        Release.project_id == group.project_id, Release.version.in_([release, group.resolution_release]))).all())
    resolved_in, seen_in = ids.get(group.resolution_release), ids.get(release)
    if resolved_in is None or seen_in is None:  # a release not recorded (deleted meanwhile): take it as newer
        return True
    return seen_in > resolved_in if group.resolution_type == "in_next_release" else seen_in >= resolved_in


def snooze_ends(group: Group, now: datetime, user: str | None) -> bool:
    """Whether a new event (of ``user``, Sentry's user identity, if any) ends the ignored issue's snooze.

    Any condition met ends it: the time passed, the events counted (since ignored, or within the window,
    this one included), the users counted since ignored.
    """
    if group.ignore_until is not None and now >= group.ignore_until:
        return True
    if group.ignore_count is not None:
        if group.ignore_window:
            recent = db.session.scalar(select(func.count()).select_from(Event).where(
                Event.group_id == group.id, Event.received > now - timedelta(minutes=group.ignore_window)))
            if recent + 1 >= group.ignore_count:
                return True
        elif group.times_seen + 1 - (group.ignore_base_count or 0) >= group.ignore_count:
            return True
    if group.ignore_user_count is not None and user:
        try:  # counted now, not after the event is stored, so this event's user counts (PFADD twice is a no-op)
            redis = get_redis()
            redis.pfadd(keys.group_users(group.id), user)
            users = int(redis.pfcount(keys.group_users(group.id)))
        except RedisError:
            logger.exception("snooze.users_unknown group=%s: Redis did not answer; the user count waits", group.id)
            return False
        if users - (group.ignore_base_users or 0) >= group.ignore_user_count:
            return True
    return False
