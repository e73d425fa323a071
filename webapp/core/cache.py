"""``get_from_cache``: a Redis read-through cache of the few rows read on every delivery and every ingested event."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

from flask import current_app, g, has_app_context
from redis.exceptions import RedisError
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from ..models import Organization, Project, ProjectKey
from . import keys
from .extensions import db

logger = logging.getLogger(__name__)

# Which columns are cached, per model. Rows are cached as JSON, so only plain values.
CACHED_COLUMNS = {
    Organization: ("id", "slug", "name"),
    Project: ("id", "organization_id", "slug", "name", "platform", "key_rate_limit"),
}
# What ingestion needs of each of a project's client keys (get_project_keys).
KEY_COLUMNS = ("id", "public_key", "is_active", "rate_limit")


def get_from_cache(model: type, pk: int) -> SimpleNamespace | None:
    """Return the cached columns of ``model`` row ``pk`` (reading the database on a miss), or None.

    A row read once is remembered for the rest of the app context (one request, one job or one batch of
    deliveries: a batch starts none later than 7 s after its job began), so a batch of alerts for one project
    reads it once.
    """
    seen = g.setdefault("hookline_model_cache", {})
    if (model, pk) not in seen:
        seen[(model, pk)] = _model_from(model, pk, *_read(keys.model_cache(model.__tablename__, pk)))
    return seen[(model, pk)]


def get_project_keys(project_id: int) -> list[SimpleNamespace]:
    """Return the client keys of project ``project_id``, oldest first (reading the database on a miss)."""
    return _keys_from(project_id, *_read(keys.project_keys_cache(project_id)))


def get_project_with_keys(project_id: int) -> tuple[SimpleNamespace | None, list[SimpleNamespace]]:
    """Return the project (or None) and its client keys, both cache entries read in one round trip."""
    names = (keys.model_cache(Project.__tablename__, project_id), keys.project_keys_cache(project_id))
    try:
        raw = current_app.extensions["redis"].mget(*names)
        cached, reachable = [None if value is None else json.loads(value) for value in raw], True
    except RedisError as exc:  # a cache: without Redis, read the database
        logger.warning("model cache read failed for %s: %s", names[0], exc.__class__.__name__)
        cached, reachable = [None, None], False
    project = _model_from(Project, project_id, cached[0], reachable)
    return project, (_keys_from(project_id, cached[1], reachable) if project is not None else [])


def _model_from(model: type, pk: int, cached, reachable: bool) -> SimpleNamespace | None:
    columns = CACHED_COLUMNS[model]
    if isinstance(cached, dict) and set(cached) == set(columns):  # else a miss, or cached by an older release
        return SimpleNamespace(**cached)
    row = db.session.get(model, pk)
    if row is None:
        return None
    values = {column: getattr(row, column) for column in columns}
    if reachable:  # without Redis, filling would only fail (and wait) a second time
        _fill(keys.model_cache(model.__tablename__, pk), values)
    return SimpleNamespace(**values)


def _keys_from(project_id: int, rows, reachable: bool) -> list[SimpleNamespace]:
    if rows is None:
        found = select(ProjectKey).where(ProjectKey.project_id == project_id).order_by(ProjectKey.id)
        rows = [{column: getattr(row, column) for column in KEY_COLUMNS} for row in db.session.scalars(found)]
        if reachable:
            _fill(keys.project_keys_cache(project_id), rows)
    return [SimpleNamespace(**row) for row in rows]


def _read(key: str) -> tuple[object, bool]:
    """Return the cached JSON value (None on a miss) and whether Redis answered."""
    try:
        raw = current_app.extensions["redis"].get(key)
    except RedisError as exc:  # a cache: without Redis, read the database
        logger.warning("model cache read failed for %s: %s", key, exc.__class__.__name__)
        return None, False
    return (None if raw is None else json.loads(raw)), True


def _fill(key: str, value) -> None:
    try:
        current_app.extensions["redis"].set(key, json.dumps(value), ex=keys.MODEL_CACHE_TTL)
    except RedisError as exc:  # not cached this time; the rows themselves are fine
        logger.warning("model cache fill failed for %s: %s", key, exc.__class__.__name__)


# Invalidation: after every commit that changed or deleted a cached row, its entry is deleted.
# Registered once for every session (the listeners are global), whichever app is current.


@event.listens_for(Session, "after_flush")
def _collect_changed(session, flush_context):
    changed = session.info.setdefault("hookline_cache_changed", set())
    for instance in list(session.dirty) + list(session.deleted):
        if type(instance) in CACHED_COLUMNS and instance.id is not None:
            changed.add(keys.model_cache(type(instance).__tablename__, instance.id))
    # A project's key list changes with every key created, changed or deleted (so a disabled key is refused at
    # the next request), and goes with its project.
    for instance in list(session.new) + list(session.dirty) + list(session.deleted):
        if isinstance(instance, ProjectKey) and instance.project_id is not None:
            changed.add(keys.project_keys_cache(instance.project_id))
        elif isinstance(instance, Project) and instance in session.deleted:
            changed.add(keys.project_keys_cache(instance.id))


@event.listens_for(Session, "after_commit")
def _invalidate(session):
    changed = session.info.pop("hookline_cache_changed", None)
    if not changed or not has_app_context():
        return
    g.pop("hookline_model_cache", None)
    try:
        current_app.extensions["redis"].delete(*changed)
    except RedisError:
        # The rows are committed; a stale entry outlives them only until its TTL.
        logger.exception("model cache invalidation failed for %s", sorted(changed))


@event.listens_for(Session, "after_rollback")
def _forget(session):
    session.info.pop("hookline_cache_changed", None)
