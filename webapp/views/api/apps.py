"""Internal apps through the API: Sentry's sentry-apps endpoints plus Hookline's test-alert, enable, rotate, health."""

from __future__ import annotations

from datetime import datetime, timezone

from flask import jsonify, request, url_for
from sqlalchemy import select

from ...apps.internal_apps import (
    AppValidationError, app_health, app_warnings, delete_internal_app, enable_app, enqueue_test_alert,
    get_test_alert_result, list_organization_apps, register_internal_app, rotate_secret, update_internal_app,
)
from ...core.extensions import db
from ...core.input_guard import parse_row_id
from ...core.redis_store import get_redis
from ...dispatch.delivery import (
    ResendRefused, failed_messages, missed_delivery_count, resend_failed_messages, resend_logged_request,
)
from ...dispatch.events import EVENT_TYPES, resource_of
from ...dispatch.request_log import SentryAppWebhookRequestsBuffer, is_error_code, mask_signatures_in
from ...models import MANAGING_ROLES, RESOURCES, Organization, SentryApp
from . import ApiError, api_user, bp, field, flag, json_body, org_for, paged, require_manager, role_in


def iso(value) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None


def webhook_events(resources: list[str]) -> list[str]:
    """The event types an app subscribed to ``resources`` receives (Sentry's ``webhookEvents``)."""
    return [event_type for event_type in EVENT_TYPES if resource_of(event_type) in resources]


def serialize_app(sentry_app: SentryApp, role: str) -> dict:
    """Sentry's SentryApp shape (an internal integration: ``status`` internal), with Hookline's state in
    ``isDisabled``, ``disabledAt``, ``disabledReason``; the secret only for owners and managers."""
    manager = role in MANAGING_ROLES
    return {
        "name": sentry_app.name,
        "slug": sentry_app.slug,
        "uuid": sentry_app.uuid,
        "status": "internal",
        "isDisabled": not sentry_app.is_enabled,
        "isInternal": True,
        "isAlertable": True,
        "events": sentry_app.resource_list,
        "webhookEvents": webhook_events(sentry_app.resource_list),
        "webhookUrl": sentry_app.webhook_url,
        "webhookHeaders": [],
        "redirectUrl": None,
        "verifyInstall": False,
        "allowedOrigins": [],
        "avatars": [],
        "featureData": [],
        "metadata": "",
        "schema": "",
        "author": sentry_app.organization.name,
        "overview": None,
        "popularity": None,
        "scopes": [],
        "clientId": sentry_app.uuid,
        "clientSecret": sentry_app.client_secret if manager else None,
        "owner": {"id": sentry_app.organization.id, "slug": sentry_app.organization.slug},
        "installation": {"uuid": sentry_app.installation.uuid if sentry_app.installation else None},
        "dateCreated": iso(sentry_app.date_added),
        "disabledAt": iso(sentry_app.disabled_at),
        "disabledReason": sentry_app.disabled_reason,
        "missedDeliveries": missed_delivery_count(sentry_app.id),
    }


def app_or_404(app_id_or_slug: str) -> tuple[SentryApp, str]:
    """Return the app (by slug, or by id as Sentry also takes) and the caller's role in its organisation; 404 for
    another organisation's app."""
    sentry_app = db.session.scalar(select(SentryApp).where(SentryApp.slug == app_id_or_slug))
    if sentry_app is None and parse_row_id(app_id_or_slug) is not None:
        sentry_app = db.session.get(SentryApp, parse_row_id(app_id_or_slug))
    if sentry_app is None:
        raise ApiError(404, "The requested resource does not exist.")
    return sentry_app, role_in(sentry_app.organization_id)


def read_events(body: dict) -> list[str] | None:
    events = field(body, "events", list)
    if events is None:
        return None
    unknown = [event for event in events if event not in RESOURCES]
    if unknown or not all(isinstance(event, str) for event in events):
        raise ApiError(400, f"events: each must be one of {', '.join(RESOURCES)}.")
    return events


def validation_error(exc: AppValidationError) -> ApiError:
    names = {"webhook_url": "webhookUrl", "resources": "events"}
    detail = "; ".join(f"{names.get(name, name)}: {message}" for name, message in exc.errors.items())
    return ApiError(400, detail)


@bp.route("/organizations/<org_slug>/sentry-apps/")
def list_apps(org_slug):
    organization, role = org_for(org_slug)
    return paged(list_organization_apps(organization.id), lambda sentry_app: serialize_app(sentry_app, role))


@bp.route("/organizations/<org_slug>/sentry-app-installations/")
def list_installations(org_slug):
    """Sentry's installations list: each internal app is installed in its own organisation."""
    organization, _ = org_for(org_slug)
    return paged([app for app in list_organization_apps(organization.id) if app.installation is not None],
                 lambda sentry_app: serialize_installation(sentry_app, organization))


def serialize_installation(sentry_app: SentryApp, organization: Organization) -> dict:
    return {"app": {"uuid": sentry_app.uuid, "slug": sentry_app.slug, "sentryAppId": sentry_app.id},
            "organization": {"slug": organization.slug}, "uuid": sentry_app.installation.uuid,
            "status": "installed"}


@bp.route("/sentry-apps/", methods=["POST"])
def create_app_endpoint():
    body = json_body()
    name = field(body, "name", str, required=True)
    org_slug = field(body, "organization", str, required=True)
    webhook_url = field(body, "webhookUrl", str, required=True)
    events = read_events(body) or []
    if field(body, "isInternal", bool) is False:
        raise ApiError(400, "isInternal: Hookline only has internal integrations; leave it out or send true.")
    organization, role = org_for(org_slug)
    require_manager(role)
    try:
        sentry_app = register_internal_app(organization, name, webhook_url, events, api_user().id)
    except AppValidationError as exc:
        db.session.rollback()
        raise validation_error(exc) from None
    return with_warnings(jsonify(serialize_app(sentry_app, role))), 201


@bp.route("/sentry-apps/<app_slug>/", methods=["GET"])
def get_app(app_slug):
    sentry_app, role = app_or_404(app_slug)
    return jsonify(serialize_app(sentry_app, role))


@bp.route("/sentry-apps/<app_slug>/", methods=["PUT"])
def update_app(app_slug):
    sentry_app, role = app_or_404(app_slug)
    require_manager(role)
    body = json_body()
    name = field(body, "name", str)
    webhook_url = field(body, "webhookUrl", str)
    events = read_events(body)
    try:
        update_internal_app(sentry_app, name if name is not None else sentry_app.name,
                            webhook_url if webhook_url is not None else sentry_app.webhook_url,
                            events if events is not None else sentry_app.resource_list, api_user().id)
    except AppValidationError as exc:
        db.session.rollback()
        raise validation_error(exc) from None
    if events is not None and not sentry_app.is_enabled:
        # As in Sentry, setting events re-enables; what the app missed stays kept for a replay via enable/.
        enable_app(sentry_app, api_user().id, replay=None)
    return with_warnings(jsonify(serialize_app(sentry_app, role)))


def with_warnings(response):
    """Add what the save warned about as ``Warning: 299`` headers (RFC 7234's "miscellaneous persistent warning")."""
    for warning in app_warnings():
        response.headers.add("Warning", '299 hookline "' + warning.replace('"', "'") + '"')
    return response


@bp.route("/sentry-apps/<app_slug>/", methods=["DELETE"])
def delete_app(app_slug):
    sentry_app, role = app_or_404(app_slug)
    require_manager(role)
    delete_internal_app(sentry_app, api_user().id)
    return "", 204


@bp.route("/sentry-apps/<app_slug>/webhook-requests/")
def webhook_requests(app_slug):
    sentry_app, role = app_or_404(app_slug)
    event_type = request.args.get("eventType") or None
    if event_type is not None and event_type not in EVENT_TYPES:
        raise ApiError(400, f"eventType: must be one of {', '.join(EVENT_TYPES)}.")
    entries = SentryAppWebhookRequestsBuffer(get_redis(), sentry_app.id).get_requests(event_type, flag("errorsOnly"))
    organization = sentry_app.organization
    return paged(entries, lambda entry: serialize_request(entry, sentry_app, organization, role))


def serialize_request(entry: dict, sentry_app: SentryApp, organization: Organization, role: str) -> dict:
    """Sentry's webhook-request shape plus Hookline's fields; signature values are masked for everyone, and a
    failed request's headers and bodies are shown to owners and managers only."""
    item = {
        "webhookUrl": entry["webhook_url"],
        "sentryAppSlug": sentry_app.slug,
        "eventType": entry["event_type"],
        "date": entry["date"],
        "responseCode": entry["response_code"],
        "organization": {"name": organization.name, "slug": organization.slug},
        "requestId": entry.get("request_id"),
        "webhookId": entry.get("message_id"),
        "durationMs": entry.get("duration_ms"),
        "attempt": entry.get("attempt", 1),
        "errorId": entry.get("error_id"),
        "projectId": entry.get("project_id"),
        "failure": entry.get("failure"),
        "resend": bool(entry.get("resend")),
    }
    if is_error_code(entry["response_code"]) and role in MANAGING_ROLES:  # bodies: owners and managers only
        headers = entry.get("request_headers")
        item["requestHeaders"] = None if headers is None else mask_signatures_in(headers)  # entries stored unmasked
        item["requestBody"] = entry.get("request_body")
        failure = entry.get("failure")
        item["responseBody"] = entry.get("response_body") or (failure["message"] if failure else None)
    return item


@bp.route("/sentry-apps/<app_slug>/webhook-requests/<request_id>/resend/", methods=["POST"])
def resend_request(app_slug, request_id):
    """Queue a logged request's message again: same event type, body and webhook-id (owners and managers)."""
    sentry_app, role = app_or_404(app_slug)
    require_manager(role)
    logged = SentryAppWebhookRequestsBuffer(get_redis(), sentry_app.id).find_request(request_id)
    if logged is None:
        raise ApiError(404, "The requested resource does not exist.")
    try:
        job_id = resend_logged_request(sentry_app, logged)
    except ResendRefused as exc:
        raise ApiError(409, str(exc)) from None
    return jsonify(requestId=logged.request_id, webhookId=logged.message_id, eventType=logged.entry["event_type"],
                   jobId=job_id), 202


@bp.route("/sentry-apps/<app_slug>/webhook-requests/recover/", methods=["GET", "POST"])
def recover_failed(app_slug):
    """Every message whose newest logged attempt since ``since`` failed: GET counts them, POST sends each again
    under its own webhook-id (owners and managers; 409 while the app is disabled)."""
    sentry_app, role = app_or_404(app_slug)
    require_manager(role)
    raw = request.args.get("since") if request.method == "GET" else field(json_body(), "since", str)
    since = _moment(raw)
    if request.method == "GET":
        messages = failed_messages(sentry_app, since)
        return jsonify(since=iso(since), count=len(messages), webhookIds=[logged.message_id for logged in messages])
    try:
        job_ids = resend_failed_messages(sentry_app, since)
    except ResendRefused as exc:
        raise ApiError(409, str(exc)) from None
    return jsonify(since=iso(since), resent=len(job_ids), jobIds=job_ids), 202


def _moment(raw) -> datetime:
    """A UTC time such as ``2026-11-01T09:30:00Z`` (naive: UTC), as a naive UTC datetime; a 400 otherwise."""
    try:
        moment = datetime.fromisoformat(str(raw or "").replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "since: expected a time such as 2026-11-01T09:30:00Z.") from None
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


@bp.route("/sentry-apps/<app_slug>/test-alert/", methods=["POST"])
def test_alert(app_slug):
    """Queue a test alert and answer at once: 202 with the job, and ``Location`` where its outcome appears.

    No request waits for a receiver: a test alert to an address that never answers would hold a web worker for
    the whole timeout, and thirty of them every worker of the web tier.
    """
    sentry_app, role = app_or_404(app_slug)
    require_manager(role)
    job_id = enqueue_test_alert(sentry_app, api_user().id)
    return _test_alert_answer(sentry_app, job_id, None)


@bp.route("/sentry-apps/<app_slug>/test-alert/<job_id>/")
def test_alert_result(app_slug, job_id):
    """The outcome of a test alert: 200 once the worker sent it, 202 (with ``Retry-After``) while it waits."""
    sentry_app, _ = app_or_404(app_slug)
    try:
        result = get_test_alert_result(sentry_app, job_id)
    except LookupError:
        raise ApiError(404, "No test alert of this app has that id (results are kept for an hour).") from None
    return _test_alert_answer(sentry_app, job_id, result)


def _test_alert_answer(sentry_app: SentryApp, job_id: str, result: dict | None):
    location = url_for("api.test_alert_result", app_slug=sentry_app.slug, job_id=job_id)
    if result is None:
        answer = jsonify(outcome="queued", responseCode=None, durationMs=None, excerpt="", failure=None,
                         jobId=job_id, resultUrl=location)
        answer.status_code = 202
        answer.headers["Location"] = location
        answer.headers["Retry-After"] = "1"
        return answer
    return jsonify(outcome=result["outcome"], responseCode=result.get("response_code"),
                   durationMs=result.get("duration_ms"), excerpt=result.get("excerpt") or "",
                   failure=result.get("failure"), jobId=job_id, resultUrl=location)


@bp.route("/sentry-apps/<app_slug>/enable/", methods=["POST"])
def enable(app_slug):
    sentry_app, role = app_or_404(app_slug)
    require_manager(role)
    body = json_body() if request.get_data() else {}
    replay = bool(field(body, "replay", bool))
    replayed = enable_app(sentry_app, api_user().id, replay=replay)
    if replayed is None:
        raise ApiError(409, f"{sentry_app.name} is already enabled.")
    return jsonify({**serialize_app(sentry_app, role), "replayed": replayed})


@bp.route("/sentry-apps/<app_slug>/rotate-secret/", methods=["POST"])
def rotate(app_slug):
    sentry_app, role = app_or_404(app_slug)
    require_manager(role)
    secret = rotate_secret(sentry_app, api_user().id)
    return jsonify(clientSecret=secret, previousSecretValidUntil=iso(sentry_app.previous_secret_expires_at))


@bp.route("/sentry-apps/<app_slug>/health/")
def health(app_slug):
    sentry_app, _ = app_or_404(app_slug)
    raw = request.args.get("days", "7")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 30:  # "²" is a digit to isdigit() only
        raise ApiError(400, "days: expected a whole number from 1 to 30.")
    return jsonify([
        {"date": day.isoformat(), "successCount": counts["success_count"], "errorCount": counts["error_count"],
         "timeoutCount": counts["timeout_count"], "fatalCount": counts["fatal_count"]}
        for day, counts in app_health(sentry_app, int(raw))
    ])
