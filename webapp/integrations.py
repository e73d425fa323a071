"""Internal apps: register them and send them test alerts."""

from __future__ import annotations

from flask import current_app
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import func, select

from . import keys
from .dispatch.queues import get_queue
from .dispatch.tasks import send_test_alert
from .extensions import db
from .models import RESOURCES, Organization, SentryApp, SentryAppInstallation, slugify
from .netguard import AddressPolicy, InvalidWebhookURL, validate_webhook_url
from .redis_store import get_redis


class AppValidationError(ValueError):
    """The app cannot be saved; ``errors`` maps each bad field to a message for the person."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors


def unique_app_slug(name: str) -> str:
    base = slugify(name)
    slug, n = base, 1
    while db.session.scalar(select(func.count()).where(SentryApp.slug == slug)):
        n += 1
        slug = f"{base[:45]}-{n}"
    return slug


def register_internal_app(organization: Organization, name: str, webhook_url: str, resources: list[str]) -> SentryApp:
    """Validate, create the app and its installation in ``organization``, commit and return the app."""
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "Give the app a name."
    elif len(name) > 64:
        errors["name"] = "The name must be at most 64 characters."
    elif db.session.scalar(
        select(func.count()).where(SentryApp.organization_id == organization.id, SentryApp.name == name)
    ):
        errors["name"] = f"This organisation already has an app named {name!r}."
    try:
        webhook_url = validate_webhook_url(webhook_url, AddressPolicy.from_config(current_app.config))
    except InvalidWebhookURL as exc:
        errors["webhook_url"] = str(exc)
    unknown = sorted(set(resources) - set(RESOURCES))
    if unknown:
        errors["resources"] = f"Unknown resources: {', '.join(unknown)}."
    if errors:
        raise AppValidationError(errors)
    sentry_app = SentryApp(
        organization_id=organization.id,
        name=name,
        slug=unique_app_slug(name),
        webhook_url=webhook_url,
        resources=" ".join(resource for resource in RESOURCES if resource in resources),
    )
    db.session.add(sentry_app)
    db.session.flush()
    db.session.add(SentryAppInstallation(sentry_app_id=sentry_app.id, organization_id=organization.id))
    db.session.commit()
    return sentry_app


def list_organization_apps(organization_id: int) -> list[SentryApp]:
    query = select(SentryApp).where(SentryApp.organization_id == organization_id).order_by(SentryApp.name)
    return list(db.session.scalars(query))


def enqueue_test_alert(sentry_app: SentryApp) -> str:
    """Queue a test alert for the worker and return the job id the page polls."""
    job = get_queue(keys.WEBHOOK_QUEUE).enqueue(
        send_test_alert,
        sentry_app.id,
        job_timeout=int(current_app.config["WEBHOOK_TIMEOUT"]) + 30,
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
        meta={"sentry_app_id": sentry_app.id},
    )
    return job.id


def get_test_alert_result(sentry_app: SentryApp, job_id: str) -> dict | None:
    """Return the outcome of a test-alert job of this app, None while it is waiting, or raise LookupError."""
    try:
        job = Job.fetch(job_id, connection=get_redis())
    except (NoSuchJobError, ValueError):
        raise LookupError(job_id) from None
    if job.meta.get("sentry_app_id") != sentry_app.id:
        raise LookupError(job_id)
    status = job.get_status()
    if status == JobStatus.FINISHED:
        return job.return_value()
    if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
        return {"outcome": "failed", "excerpt": "The worker could not run the test alert; see the worker's log."}
    return None
