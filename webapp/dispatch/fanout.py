"""Queue deliveries: one RQ job per app and delivery, so one slow receiver never holds up another."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from .. import keys
from ..extensions import db
from ..models import SentryApp
from .events import resource_of
from .queues import get_queue


def enqueue_delivery(func: str, *args) -> str:
    """Queue one delivery job (``func`` is the job's dotted path) on the webhook queue and return its id."""
    job = get_queue(keys.WEBHOOK_QUEUE).enqueue(
        func, *args,
        job_timeout=int(current_app.config["WEBHOOK_TIMEOUT"]) + 30,
        result_ttl=600,
        failure_ttl=30 * 24 * 3600,
    )
    return job.id


def subscribed_app_ids(organization_id: int, resource: str) -> list[int]:
    """Return the enabled apps of the organisation that subscribe to ``resource``."""
    rows = db.session.execute(
        select(SentryApp.id, SentryApp.resources)
        .where(SentryApp.organization_id == organization_id, SentryApp.status == "enabled")
    )
    return [app_id for app_id, resources in rows if resource in resources.split()]


def notify_resource_change(organization_id: int, event_type: str, data: dict, actor: dict | None = None) -> list[str]:
    """Queue ``event_type`` with ``data`` for every enabled app of the organisation subscribed to its resource."""
    return [
        enqueue_delivery("webapp.dispatch.tasks.send_resource_change_webhook", app_id, event_type, data, actor)
        for app_id in subscribed_app_ids(organization_id, resource_of(event_type))
    ]
