"""Internal apps: register, test, disable and re-enable, delete, rotate secrets, read health."""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import timedelta

from flask import current_app, g, has_request_context, request
from rq import RateLimit
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import func, select, update

from ..core import clock, keys
from ..core.audit import changed_fields, record_audit
from ..core.extensions import db
from ..core.names import has_control_characters
from ..core.netguard import AddressPolicy, InvalidWebhookURL, OwnEndpoints, validate_webhook_url
from ..core.redis_store import get_redis
from ..dispatch.delivery import drop_missed, forget_replayed, replay_missed
from ..dispatch.health import IntegrationRequestBuffer, display_history
from ..dispatch.queues import app_caps, get_queue, job_timeout
from ..dispatch.request_log import log_keys
from ..dispatch.tasks import send_test_alert
from ..models import (
    RESOURCES, IssueAlertRule, MetricAlertRule, Organization, Project, SentryApp, SentryAppInstallation, slugify,
    utcnow,
)

MAX_DISABLE_REASON = 500


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


def own_endpoints() -> OwnEndpoints:
    """Where this Hookline answers: BASE_URL, and the host and socket of the request being served (if any)."""
    return OwnEndpoints.of(current_app.config["BASE_URL"], request.environ if has_request_context() else None)


def validate_app_fields(organization_id: int, name: str, webhook_url: str, resources: list[str],
                        app_id: int | None = None, saved_url: str | None = None) -> tuple[str, str]:
    """Return the cleaned name and URL, or raise AppValidationError naming every bad field.

    A new or changed URL must not point at Hookline itself; ``saved_url`` (the app's current one) is not held to
    that, so an app saved before the check can still be renamed.
    """
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "Give the app a name."
    elif len(name) > 64:
        errors["name"] = "The name must be at most 64 characters."
    elif has_control_characters(name):
        errors["name"] = "The name must not contain line breaks, tabs or other control characters."
    elif db.session.scalar(
        select(func.count()).where(SentryApp.organization_id == organization_id, SentryApp.name == name,
                                   SentryApp.id != (app_id or 0))
    ):
        errors["name"] = f"This organisation already has an app named {name!r}."
    own = None if saved_url is not None and (webhook_url or "").strip() == saved_url else own_endpoints()
    warnings: list[str] = []
    try:
        webhook_url = validate_webhook_url(webhook_url, AddressPolicy.from_config(current_app.config), own, warnings)
    except InvalidWebhookURL as exc:
        errors["webhook_url"] = str(exc)
    unknown = sorted(set(resources) - set(RESOURCES))
    if unknown:
        errors["resources"] = f"Unknown resources: {', '.join(unknown)}."
    if errors:
        raise AppValidationError(errors)
    # What the person saving should know but that does not stop the save (a host that does not resolve now):
    # the dashboard flashes these, the API sends them as Warning headers.
    g.setdefault("app_warnings", []).extend(warnings)
    return name, webhook_url


def app_warnings() -> list[str]:
    """The warnings of the app fields validated in this request (see ``validate_app_fields``)."""
    return list(g.get("app_warnings", []))


def register_internal_app(
    organization: Organization, name: str, webhook_url: str, resources: list[str], actor_id: int | None = None
) -> SentryApp:
    """Validate, create the app and its installation in ``organization``, commit and return the app."""
    name, webhook_url = validate_app_fields(organization.id, name, webhook_url, resources)
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
    record_audit(organization.id, "app.create", actor_id=actor_id, target_object=sentry_app.id,
                 target_label=name, data={"webhook_url": webhook_url, "resources": sentry_app.resource_list})
    db.session.commit()
    return sentry_app


def update_internal_app(sentry_app: SentryApp, name: str, webhook_url: str, resources: list[str],
                        actor_id: int | None = None) -> dict:
    """Change the app's name, webhook URL and resources; audit what changed; commit. Return the changes."""
    name, webhook_url = validate_app_fields(sentry_app.organization_id, name, webhook_url, resources, sentry_app.id,
                                            sentry_app.webhook_url)
    new = {"name": name, "webhook_url": webhook_url, "resources": " ".join(r for r in RESOURCES if r in resources)}
    changes = {field: value for field, value in new.items() if getattr(sentry_app, field) != value}
    if changes:
        audited = changed_fields({field: getattr(sentry_app, field) for field in changes}, changes)
        if "resources" in audited:
            audited["resources"] = [value.split() for value in audited["resources"]]
        for field, value in changes.items():
            setattr(sentry_app, field, value)
        record_audit(sentry_app.organization_id, "app.edit", actor_id=actor_id, target_object=sentry_app.id,
                     target_label=sentry_app.name, data=audited)
        db.session.commit()
    return changes


def delete_internal_app(sentry_app: SentryApp, actor_id: int | None) -> None:
    """Delete the app, its installation and everything Hookline keeps about it in Redis; audit it."""
    record_audit(sentry_app.organization_id, "app.remove", actor_id=actor_id, target_object=sentry_app.id,
                 target_label=sentry_app.name, data={"webhook_url": sentry_app.webhook_url})
    app_id, organization_id = sentry_app.id, sentry_app.organization_id
    _remove_rule_actions(app_id, organization_id)
    db.session.delete(sentry_app)
    db.session.commit()
    redis = get_redis()
    IntegrationRequestBuffer(redis, app_id, organization_id).delete_all(clock.today())
    redis.delete(*log_keys(app_id), keys.missed_deliveries(app_id), keys.missed_count(app_id))
    redis.hdel(keys.LAST_DELIVERY, str(app_id))


def _remove_rule_actions(app_id: int, organization_id: int) -> None:
    """Take the app out of every alert rule of its organisation (a rule left with no action sends nothing)."""
    for model in (IssueAlertRule, MetricAlertRule):
        rules = db.session.scalars(select(model).join(Project).where(Project.organization_id == organization_id))
        for rule in rules:
            if any(action["sentry_app_id"] == app_id for action in rule.actions):
                rule.actions = [action for action in rule.actions if action["sentry_app_id"] != app_id]


def disable_app(sentry_app: SentryApp, actor_id: int, reason: str) -> bool:
    """Disable an enabled app by hand, saying why; audit it. Return False if it was not enabled.

    Like an automatic disable it is one ``UPDATE … WHERE status = 'enabled'``, so a race with the worker that
    finds the app broken leaves one disable and one audit entry. The health counters are kept: re-enabling
    restarts them.
    """
    reason = (reason or "").strip()
    if not reason:
        raise AppValidationError({"reason": "Say why the app is disabled; the people who see the banner read it."})
    if len(reason) > MAX_DISABLE_REASON:
        raise AppValidationError({"reason": f"Keep the reason to at most {MAX_DISABLE_REASON} characters."})
    changed = db.session.execute(
        update(SentryApp).where(SentryApp.id == sentry_app.id, SentryApp.status == "enabled")
        .values(status="disabled", disabled_at=utcnow(), disabled_reason=reason, disabled_by_id=actor_id)
    ).rowcount == 1
    if not changed:
        db.session.rollback()
        return False
    record_audit(sentry_app.organization_id, "app.disable", actor_id=actor_id,
                 target_object=sentry_app.id, target_label=sentry_app.name, data={"reason": reason, "manual": True})
    db.session.commit()
    db.session.refresh(sentry_app)
    return True


def enable_app(sentry_app: SentryApp, actor_id: int | None, replay: bool | None) -> int | None:
    """Re-enable a disabled app: status back, health fresh, audit; replay what it missed (True), drop it
    (False), or keep it for a later replay (None).

    Return how many missed deliveries were queued again, or None if the app was not disabled.
    """
    changed = db.session.execute(
        update(SentryApp).where(SentryApp.id == sentry_app.id, SentryApp.status == "disabled")
        .values(status="enabled", disabled_at=None, disabled_reason=None, disabled_by_id=None)
    ).rowcount == 1
    if not changed:
        db.session.rollback()
        return None
    replayed = replay_missed(sentry_app.id, sentry_app.organization_id) if replay else []  # commits with the enable
    record_audit(sentry_app.organization_id, "app.enable", actor_id=actor_id, target_object=sentry_app.id,
                 target_label=sentry_app.name, data={"replayed": len(replayed)} if replayed else {})
    db.session.commit()
    db.session.refresh(sentry_app)
    IntegrationRequestBuffer(get_redis(), sentry_app.id, sentry_app.organization_id).clear(clock.today())
    if replay:
        forget_replayed(sentry_app.id, replayed)
    elif replay is False:
        drop_missed(sentry_app.id)  # the owner chose not to replay them
    return len(replayed)


def rotate_secret(sentry_app: SentryApp, actor_id: int | None) -> str:
    """Give the app a new client secret; the old one keeps signing beside it for 24 hours. Return the new one."""
    sentry_app.previous_client_secret = sentry_app.client_secret
    sentry_app.previous_secret_expires_at = utcnow() + timedelta(hours=24)
    sentry_app.client_secret = secrets.token_hex(32)
    record_audit(sentry_app.organization_id, "app.rotate-secret", actor_id=actor_id,
                 target_object=sentry_app.id, target_label=sentry_app.name,
                 data={"previous_valid_until": sentry_app.previous_secret_expires_at.isoformat() + "Z"})
    db.session.commit()
    return sentry_app.client_secret


def app_health(sentry_app: SentryApp, days: int) -> list[tuple]:
    """Return ``days`` days of (day, counts), oldest first."""
    return health_for_apps([sentry_app], days)[sentry_app.id]


def health_for_apps(sentry_apps: list[SentryApp], days: int) -> dict[int, list[tuple]]:
    """Return each app's ``days`` days of (day, counts) for the charts, oldest first, in one round trip for all
    apps; the days before a disable included."""
    today = clock.today()
    span = [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]
    apps = [(sentry_app.id, sentry_app.organization_id) for sentry_app in sentry_apps]
    counts = display_history(get_redis(), apps, span)
    return {sentry_app.id: list(zip(span, days_counts)) for sentry_app, days_counts in zip(sentry_apps, counts)}


def last_deliveries(app_ids: list[int]) -> dict[int, dict]:
    """Return each app's newest delivery (date, response_code), in one round trip."""
    if not app_ids:
        return {}
    values = get_redis().hmget(keys.LAST_DELIVERY, [str(app_id) for app_id in app_ids])
    return {app_id: json.loads(value) for app_id, value in zip(app_ids, values) if value}


def list_organization_apps(organization_id: int) -> list[SentryApp]:
    query = select(SentryApp).where(SentryApp.organization_id == organization_id).order_by(SentryApp.name)
    return list(db.session.scalars(query))


def enqueue_test_alert(sentry_app: SentryApp, actor_id: int | None) -> str:
    """Queue a test alert for the worker, audit it, and return the job id the page polls.

    An app has at most one pending test alert: a second press while one waits returns the waiting one (and is
    not audited again).
    """
    redis = get_redis()
    pending_key = keys.test_alert_pending(sentry_app.id)
    # One press of this app at a time: the look at the pending job and the queueing of a new one are one step,
    # so a double click cannot pass between the first press recording its job id and creating that job.
    with redis.lock(keys.test_alert_lock(sentry_app.id), timeout=10, blocking_timeout=5):
        pending = (redis.get(pending_key) or b"").decode()
        if pending and _is_waiting(pending):
            return pending
        job_id = uuid.uuid4().hex
        redis.set(pending_key, job_id, ex=keys.TEST_ALERT_PENDING_TTL)
        queue = get_queue(keys.WEBHOOK_QUEUE)
        job = queue.create_job(
            send_test_alert, args=(sentry_app.id,), job_id=job_id, timeout=job_timeout(), result_ttl=3600,
            failure_ttl=7 * 24 * 3600, meta={"sentry_app_id": sentry_app.id},
            rate_limit=RateLimit(keys.app_rate_limit(sentry_app.id), app_caps([sentry_app.id])[sentry_app.id]),
        )
        queue.enqueue_job(job)
    record_audit(sentry_app.organization_id, "app.test-alert", actor_id=actor_id, target_object=sentry_app.id,
                 target_label=sentry_app.name, data={"webhook_url": sentry_app.webhook_url})
    db.session.commit()
    return job_id


def _is_waiting(job_id: str) -> bool:
    try:
        status = Job.fetch(job_id, connection=get_redis()).get_status()
    except NoSuchJobError:
        return False
    return status in (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.RATE_LIMITED, JobStatus.SCHEDULED)


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
