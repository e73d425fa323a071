"""Queue work for the workers: one RQ job per app and delivery, committed with the change that implies it."""

from __future__ import annotations

from sqlalchemy import select

from ..extensions import db
from ..models import SentryApp
from ..outbox import enqueue_after_commit
from .events import resource_of
from .queues import app_caps, delivery_spec, task_spec
from .signing import new_message_id


def enqueue_task_after_commit(func: str, *args) -> str:
    """Add a task (``func`` is its dotted path) to the open transaction; it is queued when that commits."""
    return enqueue_after_commit(task_spec(func, args))


def subscribed_app_ids(organization_id: int, resource: str) -> list[int]:
    """Return the apps of the organisation subscribed to ``resource``, disabled ones included (they keep it)."""
    rows = db.session.execute(
        select(SentryApp.id, SentryApp.resources).where(SentryApp.organization_id == organization_id)
    )
    return [app_id for app_id, resources in rows if resource in resources.split()]


def notify_resource_change(organization_id: int, event_type: str, data: dict, actor: dict | None = None) -> list[str]:
    """Add ``event_type`` with ``data`` for every subscribed app of the organisation to the open transaction.

    The deliveries are queued when the caller commits the change, and never without it.
    """
    caps = app_caps(subscribed_app_ids(organization_id, resource_of(event_type)))
    return [
        enqueue_after_commit(delivery_spec(
            (app_id, event_type, data, actor, new_message_id(app_id, event_type), 1, False, organization_id), cap=cap))
        for app_id, cap in caps.items()
    ]
