"""Helpers for the failure-lifecycle tests: an org with three roles and an app "Pager" on the receiver."""

from __future__ import annotations

import pytest
from rq.job import Job
from rq.registry import FinishedJobRegistry
from sqlalchemy import select

from webapp.apps.internal_apps import register_internal_app
from webapp.core import keys
from webapp.core.extensions import db
from webapp.dispatch.delivery import enqueue_delivery_jobs
from webapp.dispatch.health import IntegrationRequestBuffer
from webapp.dispatch.request_log import SentryAppWebhookRequestsBuffer
from webapp.dispatch.signing import new_message_id
from webapp.models import AuditLogEntry, Organization, SentryApp


@pytest.fixture
def pager(app, make_user, receiver):
    """Return the id of app "Pager" (org acme; owner, manager and member) whose webhook is the receiver's /hook."""
    make_user("owner@example.com", "acme", "owner")
    make_user("manager@example.com", "acme", "manager")
    make_user("member@example.com", "acme", "member")
    with app.app_context():
        organization = db.session.scalar(select(Organization).where(Organization.slug == "acme"))
        sentry_app = register_internal_app(organization, "Pager", receiver.url("/hook"), ["issue"])
        receiver.secret = sentry_app.client_secret
        return sentry_app.id


def send(app, app_id: int, n: int = 1, event_type: str = "issue.created") -> list[str]:
    """Queue ``n`` deliveries to the app, as a workflow change would; return their webhook ids."""
    with app.app_context():
        ids = []
        for i in range(n):
            message_id = new_message_id()
            enqueue_delivery_jobs([(app_id, event_type, {"issue": {"id": str(i), "title": f"issue {i}"}}, None, message_id)])
            ids.append(message_id)
        return ids


def rq_jobs_run(app) -> int:
    """How many finished jobs RQ's workers dequeued and ran themselves (not those a batch or fan-out runner ran,
    whose results carry its execution id, ``batch-...`` or ``fanout-...``)."""
    connection = app.extensions["redis"]
    run = 0
    for name in keys.ALL_QUEUES:
        for job_id in FinishedJobRegistry(name, connection=connection).get_job_ids():
            execution_id = Job.fetch(job_id, connection=connection).latest_result().execution_id
            run += not execution_id.startswith(("batch-", "fanout-"))
    return run


def load_app(app, app_id: int) -> SentryApp:
    with app.app_context():
        sentry_app = db.session.get(SentryApp, app_id)
        db.session.expunge(sentry_app)
        return sentry_app


def health_today(app, app_id: int, today) -> dict:
    with app.app_context():
        return IntegrationRequestBuffer(app.extensions["redis"], app_id, 1).daily_counts(1, today)[0][1]


def log_entries(app, app_id: int) -> list[dict]:
    return SentryAppWebhookRequestsBuffer(app.extensions["redis"], app_id).get_requests()


def audit_events(app) -> list[str]:
    with app.app_context():
        return [entry.event for entry in db.session.scalars(select(AuditLogEntry).order_by(AuditLogEntry.id))]
