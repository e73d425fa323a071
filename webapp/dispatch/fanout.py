"""Queue work for the workers: one RQ job per app and delivery, so one slow receiver never holds up another."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from .. import keys
from ..extensions import db
from ..models import SentryApp
from .delivery import CRASH_RETRY, enqueue_delivery_jobs
from .events import resource_of
from .queues import get_queue
from .signing import new_message_id


def enqueue_job(func: str, *args) -> str:
    """Queue a job (``func`` is its dotted path) on the webhook queue and return its id."""
    job = get_queue(keys.WEBHOOK_QUEUE).enqueue(
        func, *args, job_timeout=int(current_app.config["WEBHOOK_TIMEOUT"]) + 60, result_ttl=600,
        failure_ttl=30 * 24 * 3600, retry=CRASH_RETRY,
    )
    return job.id


def subscribed_app_ids(organization_id: int, resource: str) -> list[int]:
    """Return the apps of the organisation subscribed to ``resource``, disabled ones included (they keep it)."""
    rows = db.session.execute(
        select(SentryApp.id, SentryApp.resources).where(SentryApp.organization_id == organization_id)
    )
    return [app_id for app_id, resources in rows if resource in resources.split()]


def notify_resource_change(organization_id: int, event_type: str, data: dict, actor: dict | None = None) -> list[str]:
    """Queue ``event_type`` with ``data`` for every app of the organisation subscribed to its resource."""
    return enqueue_delivery_jobs([
        (app_id, event_type, data, actor, new_message_id(), 1, False, organization_id)
        for app_id in subscribed_app_ids(organization_id, resource_of(event_type))
    ])
