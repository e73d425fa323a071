"""``get_from_cache``: a Redis read-through cache of the few model rows the dispatcher reads on every delivery."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

from flask import current_app, has_app_context
from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.orm import Session

from . import keys
from .extensions import db
from .models import Organization, Project

logger = logging.getLogger(__name__)

# Which columns are cached, per model. Rows are cached as JSON, so only plain values.
CACHED_COLUMNS = {
    Organization: ("id", "slug", "name"),
    Project: ("id", "organization_id", "slug", "name", "platform", "public_key"),
}


def get_from_cache(model: type, pk: int) -> SimpleNamespace | None:
    """Return the cached columns of ``model`` row ``pk`` (reading the database on a miss), or None."""
    redis = current_app.extensions["redis"]
    key = keys.model_cache(model.__tablename__, pk)
    try:
        raw = redis.get(key)
    except RedisError as exc:  # a cache: without Redis, read the database
        logger.warning("model cache read failed for %s: %s", key, exc.__class__.__name__)
        raw = None
    if raw is not None:
        return SimpleNamespace(**json.loads(raw))
    row = db.session.get(model, pk)
    if row is None:
        return None
    values = {column: getattr(row, column) for column in CACHED_COLUMNS[model]}
    try:
        redis.set(key, json.dumps(values), ex=keys.MODEL_CACHE_TTL)
    except RedisError as exc:  # not cached this time; the row itself is fine
        logger.warning("model cache fill failed for %s: %s", key, exc.__class__.__name__)
    return SimpleNamespace(**values)


# Invalidation: after every commit that changed or deleted a cached row, its entry is deleted.
# Registered once for every session (the listeners are global), whichever app is current.


@event.listens_for(Session, "after_flush")
def _collect_changed(session, flush_context):
    changed = session.info.setdefault("hookline_cache_changed", set())
    for instance in list(session.dirty) + list(session.deleted):
        if type(instance) in CACHED_COLUMNS and instance.id is not None:
            changed.add(keys.model_cache(type(instance).__tablename__, instance.id))


@event.listens_for(Session, "after_commit")
def _invalidate(session):
    changed = session.info.pop("hookline_cache_changed", None)
    if not changed or not has_app_context():
        return
    try:
        current_app.extensions["redis"].delete(*changed)
    except RedisError:
        # The rows are committed; a stale entry outlives them only until its TTL.
        logger.exception("model cache invalidation failed for %s", sorted(changed))


@event.listens_for(Session, "after_rollback")
def _forget(session):
    session.info.pop("hookline_cache_changed", None)
