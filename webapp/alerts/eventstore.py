"""Turn an SDK's event into a stored Event in an issue (Group): normalise, fingerprint, group, save."""

from __future__ import annotations

import hashlib
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from redis.exceptions import LockError, RedisError
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from ..core import keys
from ..core.extensions import db
from ..core.redis_store import get_redis
from ..models import LEVELS, Activity, Event, Group, GroupEnvironment, utcnow
from .issue_reopening import comes_back, known_releases, record_release

DEFAULT_FINGERPRINT = {"{{ default }}", "{{default}}"}
# Events name the grouping that made their issue (``grouping_config``), as Sentry's do: Hookline's own.
GROUPING_CONFIG = "hookline:2026-12"
# Keys of an SDK event that are kept as they came (after the normalised ones).
PASSTHROUGH_KEYS = ("release", "dist", "environment", "server_name", "transaction", "logger", "user", "contexts",
                    "extra", "sdk", "request", "modules", "breadcrumbs", "key_id")


@dataclass
class StoredEvent:
    event_id: int  # primary key of the Event row
    group_id: int
    is_new_group: bool
    is_regression: bool


def clean_text(text: str) -> str:
    """Replace what no database column can hold, as Sentry does: NUL characters and lone surrogates."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def _text(value, limit: int = 1000) -> str:
    return clean_text(str(value)[:limit]) if value is not None else ""


def _message(raw: dict) -> str:
    for key in ("logentry", "message"):
        value = raw.get(key)
        if isinstance(value, dict):
            value = value.get("formatted") or value.get("message")
        if isinstance(value, str) and value:
            return clean_text(value)
    return ""


def exceptions_of(raw: dict) -> list[dict]:
    value = raw.get("exception")
    values = value.get("values") if isinstance(value, dict) else value
    return [item for item in values if isinstance(item, dict)] if isinstance(values, list) else []


def _timestamp(value) -> datetime:
    try:
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(value, timezone.utc)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError, OSError):
        pass
    return datetime.now(timezone.utc)


def _tags(value) -> list[list[str]]:
    pairs = value.items() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [[_text(pair[0], 200), _text(pair[1], 200)] for pair in pairs if isinstance(pair, (list, tuple)) and len(pair) == 2]


def top_in_app_frame(exception: dict) -> dict | None:
    stacktrace = exception.get("stacktrace")
    frames = stacktrace.get("frames") if isinstance(stacktrace, dict) else None
    frames = [frame for frame in frames if isinstance(frame, dict)] if isinstance(frames, list) else []
    in_app = [frame for frame in frames if frame.get("in_app")]
    # Frames run from the outermost call to where it was raised: the last one is the top.
    return (in_app or frames or [None])[-1]


def event_id_of(raw: dict) -> str:
    """Return the event's id as 32 lowercase hex digits: the SDK's, or a new one when it sent none (or garbage)."""
    event_id = str(raw.get("event_id") or "").replace("-", "").lower()
    if len(event_id) != 32 or any(c not in "0123456789abcdef" for c in event_id):
        event_id = uuid.uuid4().hex
    return event_id


def normalize_event(raw: dict) -> dict:
    """Return the event as Hookline stores and sends it: known fields cleaned, title/culprit/metadata derived."""
    event_id = event_id_of(raw)
    level = raw.get("level") if raw.get("level") in LEVELS else "error"
    if raw.get("level") == "critical":
        level = "fatal"
    exceptions = exceptions_of(raw)
    message = _message(raw)
    when = _timestamp(raw.get("timestamp"))
    event = {"event_id": event_id, "level": level, "platform": _text(raw.get("platform") or "other", 50),
             "message": message, "datetime": when.isoformat().replace("+00:00", "Z"), "timestamp": when.timestamp(),
             "tags": _tags(raw.get("tags")), "type": "error" if exceptions else "default"}
    if exceptions:
        event["exception"] = {"values": exceptions}
        main = exceptions[-1]
        kind, value = _text(main.get("type") or "Error", 200), _text(main.get("value"), 1000)
        event["title"] = f"{kind}: {value}" if value else kind
        event["metadata"] = {"type": kind, "value": value}
        frame = top_in_app_frame(main)
        event["culprit"] = _text(raw.get("transaction") or (
            f"{frame.get('module') or frame.get('filename') or '?'} in {frame.get('function') or '?'}" if frame else ""), 200)
    else:
        event["title"] = (message.splitlines() or ["<unlabeled event>"])[0][:200]
        event["metadata"] = {"title": event["title"]}
        event["culprit"] = _text(raw.get("transaction") or raw.get("culprit"), 200)
    fingerprint = raw.get("fingerprint")
    if isinstance(fingerprint, list) and fingerprint:
        event["fingerprint"] = [_text(part, 200) for part in fingerprint]
    else:
        event["fingerprint"] = ["{{ default }}"]  # as Sentry records an event grouped by its content
    for key in PASSTHROUGH_KEYS:
        if key in raw:
            event[key] = raw[key]
    # As Sentry writes every event: logger "" and dist null when the SDK sent none; the file of the top in-app
    # frame as the location (and in the metadata, with its function).
    event.setdefault("logger", "")
    event.setdefault("dist", None)
    event["location"] = None
    if exceptions and (frame := top_in_app_frame(exceptions[-1])):
        event["location"] = _text(frame.get("filename") or frame.get("module"), 200) or None
        event["metadata"].update({"filename": _text(frame.get("filename"), 200),
                                  "function": _text(frame.get("function"), 200)})
    event["tags"] = _with_derived_tags(event, event["tags"])
    return event


# Contexts Sentry turns into tags: <context> ("<name> <version>") and <context>.name.
CONTEXT_TAGS = ("browser", "os", "runtime", "client_os")


def _with_derived_tags(event: dict, sent: list[list[str]]) -> list[list[str]]:
    """Return the client's tags with those Sentry derives from the event added (the client's win), by key.

    level, environment, release, dist, server_name, transaction, logger; handled and mechanism from the main
    exception; url from the request; browser, os, runtime (and their .name) and device from the contexts;
    user as id:/email:/username:/ip:.
    """
    derived = {"level": event["level"]}
    for key in ("environment", "release", "dist", "server_name", "transaction", "logger"):
        if isinstance(event.get(key), str) and event[key]:
            derived[key] = event[key]
    exceptions = (event.get("exception") or {}).get("values") or []
    mechanism = exceptions[-1].get("mechanism") if exceptions else None
    if isinstance(mechanism, dict):
        if isinstance(mechanism.get("handled"), bool):
            derived["handled"] = "yes" if mechanism["handled"] else "no"
        if isinstance(mechanism.get("type"), str) and mechanism["type"]:
            derived["mechanism"] = mechanism["type"]
    request = event.get("request")
    if isinstance(request, dict) and isinstance(request.get("url"), str) and request["url"]:
        derived["url"] = request["url"].split("?", 1)[0]
    contexts = event.get("contexts") if isinstance(event.get("contexts"), dict) else {}
    for name in CONTEXT_TAGS:
        context = contexts.get(name)
        if isinstance(context, dict) and isinstance(context.get("name"), str) and context["name"]:
            version = context.get("version")
            derived[f"{name}.name"] = context["name"]
            derived[name] = f"{context['name']} {version}" if isinstance(version, str) and version else context["name"]
    device = contexts.get("device")
    if isinstance(device, dict) and isinstance(device.get("model"), str) and device["model"]:
        derived["device"] = device["model"]
    user = event.get("user")
    if isinstance(user, dict):
        for field, prefix in (("id", "id"), ("email", "email"), ("username", "username"), ("ip_address", "ip")):
            if user.get(field) not in (None, "", "{{auto}}"):
                derived["user"] = f"{prefix}:{user[field]}"
                break
    tags = {key: value for key, value in sent}
    for key, value in derived.items():
        tags.setdefault(_text(key, 200), _text(value, 200))
    return [[key, tags[key]] for key in sorted(tags)]


def grouping_components(event: dict) -> list[str]:
    """Return what identifies the event's issue: the explicit fingerprint, else type + value + top in-app frame, else message."""
    exceptions = (event.get("exception") or {}).get("values") or []
    if exceptions:
        main = exceptions[-1]
        frame = top_in_app_frame(main) or {}
        default = [_text(main.get("type")), _text(main.get("value")),
                   f"{frame.get('module') or frame.get('filename') or ''}:{frame.get('function') or ''}"]
    else:
        default = [event.get("message") or event.get("title") or ""]
    fingerprint = event.get("fingerprint")
    if not fingerprint:
        return default
    return [part for item in fingerprint for part in (default if item in DEFAULT_FINGERPRINT else [item])]


def fingerprint_hash(components: list[str]) -> str:
    return hashlib.sha1("\x1f".join(components).encode("utf-8")).hexdigest()


def store_event(project, raw: dict, then: Callable[[StoredEvent], None] | None = None) -> tuple[str, StoredEvent | None]:
    """Store one event of ``project`` (a Project or its cached row) in its issue and commit.

    Return the event id and what happened (None: a duplicate).

    1. Normalise and fingerprint the event.
    2. Find or create its group (another request may create it at the same moment: retry on conflict).
    3. Count the event on the group; a resolved group reopens (one atomic UPDATE decides the regression),
       and the reopening goes on the issue's activity.
    4. Save the event and what ``then`` adds (its post-processing job) in the same transaction; a duplicate
       event id (unique per project) rolls it all back.
    """
    event = normalize_event(raw)
    # A duplicate (an SDK's retry, a re-run job) stores nothing, not even the new issue its content would
    # make; the unique constraint below still settles two copies racing past this check.
    if db.session.scalar(select(Event.id).where(Event.project_id == project.id, Event.event_id == event["event_id"])):
        return event["event_id"], None
    hash_ = fingerprint_hash(grouping_components(event))
    group, is_new = _get_or_create_group(project, event, hash_)
    now = utcnow()
    release = event.get("release")
    release = clean_text(release.strip()[:200]) if isinstance(release, str) and release.strip() else None
    record_release(project.id, release, now)
    reopened = comes_back(group, event, release, now)
    db.session.execute(
        update(Group).where(Group.id == group.id)
        .values(times_seen=Group.times_seen + 1, last_seen=now, level=event["level"])
    )
    # What Sentry records of how the event was grouped, and which project it belongs to (its node reference).
    event.update({"hashes": [hash_], "grouping_config": {"id": GROUPING_CONFIG, "enhancements": ""},
                  "_ref": project.id, "_ref_version": 2})
    row = Event(event_id=event["event_id"], project_id=project.id, group_id=group.id, level=event["level"],
                title=event["title"][:255], received=now, data_json=json.dumps(event))
    db.session.add(row)
    try:
        db.session.flush()
        stored = StoredEvent(row.id, group.id, is_new, reopened)
        if then is not None:
            then(stored)
        db.session.commit()
    except IntegrityError:  # this event id was stored before: undo the count, store nothing
        db.session.rollback()
        return event["event_id"], None
    if release:
        known_releases().add((project.id, release))
    return event["event_id"], stored


def _get_or_create_group(project, event: dict, hash_: str) -> tuple[Group, bool]:
    """Return the group of ``hash_`` and whether it is new; a new one commits with its "first seen" activity.

    A new error often arrives as a burst (twenty events in a second, stored by as many worker slots at once).
    The first to find no group takes a short Redis lock on the fingerprint and creates it; the others wait for
    that lock (milliseconds) and then read the group, instead of racing for the next short id.
    """
    group = _find_group(project.id, hash_)
    if group is not None:
        return group, False
    try:
        lock = get_redis().lock(keys.group_creation_lock(project.id, hash_), timeout=10, sleep=0.005,
                                blocking_timeout=5)
        locked = lock.acquire()
    except RedisError:  # no Redis: the unique short id still settles a race (see _create_group)
        lock, locked = None, False
    try:
        if locked:
            db.session.rollback()  # end the read snapshot: a group the lock's last holder committed is seen
            group = _find_group(project.id, hash_)
            if group is not None:
                return group, False
        return _create_group(project, event, hash_)
    finally:
        if locked:
            try:
                lock.release()
            except (RedisError, LockError):  # expired meanwhile: nothing of ours to release
                pass


def _find_group(project_id: int, hash_: str) -> Group | None:
    return db.session.scalar(select(Group).where(Group.project_id == project_id, Group.fingerprint_hash == hash_))


def _create_group(project, event: dict, hash_: str, attempts: int = 50) -> tuple[Group, bool]:
    """Create the group of ``hash_`` (or return it, if another made it meanwhile); retry on a short id taken.

    Concurrent new issues of one project race for the next short id: each round one of them wins it, so as
    many rounds as racers may be needed; a short random pause after a lost round spreads the racers out.
    """
    for attempt in range(attempts):
        if attempt:
            time.sleep(random.uniform(0, 0.002 * min(attempt, 10)))
            group = _find_group(project.id, hash_)
            if group is not None:
                return group, False
        next_short_id = (db.session.scalar(select(func.max(Group.short_id)).where(Group.project_id == project.id)) or 0) + 1
        group = Group(project_id=project.id, short_id=next_short_id, fingerprint_hash=hash_, title=event["title"][:255],
                      culprit=event["culprit"][:255], level=event["level"], platform=event["platform"],
                      metadata_json=json.dumps(event["metadata"]), times_seen=0)
        db.session.add(group)
        try:
            db.session.flush()
            db.session.add(Activity(group_id=group.id, kind="first_seen", date=group.first_seen,
                                    data_json=json.dumps({"event_id": event["event_id"]})))
            db.session.commit()
            return group, True
        except IntegrityError:  # another request took this fingerprint or short id first
            db.session.rollback()
    raise RuntimeError(f"could not create a group in project {project.id} after {attempts} attempts")


def record_group_environment(event: Event) -> None:
    """Note the event's environment on its issue, once per issue and environment (for the issues list's filter).

    Called by the worker after the event is stored, not on ingestion's hot path; the caller commits.
    """
    environment = event.data.get("environment")
    if not isinstance(environment, str) or not environment.strip():
        return
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    db.session.execute(
        insert(GroupEnvironment)
        .values(project_id=event.project_id, group_id=event.group_id, environment=clean_text(environment.strip()[:64]),
                first_seen=event.received)
        .on_conflict_do_nothing(index_elements=["group_id", "environment"])
    )
