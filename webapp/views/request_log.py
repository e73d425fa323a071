"""The app page's request log: its messages with their attempts (and the htmx poller), one attempt opened in the
inspector, resend."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import login_required

from ..core import clock
from ..core.redis_store import get_redis
from ..dispatch.delivery import (
    ResendRefused, failed_messages, resend_failed_messages, resend_logged_request, resend_refusal,
)
from ..dispatch.events import EVENT_TYPES
from ..dispatch.failures import label_of
from ..dispatch.messages import SEARCH_LIMIT, Message, MessageQuery, read_messages
from ..dispatch.request_log import (
    STATUS_CLASSES, LoggedRequest, SentryAppWebhookRequestsBuffer, mask_signatures_in, masked_headers,
)
from ..models import MANAGING_ROLES, Organization, SentryApp
from .helpers import get_app_or_404, get_managed_app_or_404, get_org_or_404, is_htmx

bp = Blueprint("request_log", __name__)

# The filter's words: a request without an answer is named as in the log's Status column (failures.LABELS).
STATUS_CLASS_LABELS = {**STATUS_CLASSES, "timeout": "no answer (timeout, refused, host not found, TLS error, closed)",
                       "other": "other errors (3xx, blocked)"}
RESENT = ("Resend queued: its attempts appear under this message, marked \u201cresend\u201d, with the same "
          "webhook-id; the message moves to the top of the log.")


@dataclass(frozen=True)
class LogFilters:
    """The log's filters, kept in the URL query so a filtered view can be reloaded and shared."""

    event_type: str | None = None
    errors_only: bool = False
    status: str | None = None
    search: str = ""  # a webhook-id, Request-ID or event id

    @classmethod
    def from_args(cls, args) -> LogFilters:
        event_type = args.get("event_type") or None
        if event_type is not None and event_type not in EVENT_TYPES:
            abort(400, description=f"Unknown event type {event_type!r}.")
        status = args.get("status") or None
        if status is not None and status not in STATUS_CLASSES:
            abort(400, description=f"Unknown status class {status!r}.")
        search = (args.get("q") or "").strip()[:SEARCH_LIMIT]
        return cls(event_type, args.get("errors_only") in {"1", "on", "true"}, status, search)

    @property
    def active(self) -> bool:
        return bool(self.event_type or self.errors_only or self.status or self.search)

    def query(self) -> dict[str, str]:
        pairs = (("event_type", self.event_type), ("errors_only", "1" if self.errors_only else None),
                 ("status", self.status), ("q", self.search))
        return {name: value for name, value in pairs if value}


def read_log_messages(sentry_app: SentryApp, filters: LogFilters, after: str | None = None) -> list[Message]:
    query = MessageQuery(filters.event_type, filters.errors_only, filters.status, filters.search or None, after)
    return read_messages(get_redis(), sentry_app.id, query)


def newest_date(messages: list[Message], default: str | None) -> str | None:
    """The date of the newest attempt shown: the poller asks for what came after it."""
    dates = [message.attempts[0]["date"] for message in messages if message.attempts]
    return max(dates + ([default] if default else [])) if dates else default


def log_context(sentry_app: SentryApp, role: str) -> dict:
    """Return the template values of the app page's Request Log section; ``?open=<request id>`` opens one row."""
    filters = LogFilters.from_args(request.args)
    open_id = request.args.get("open") or ""
    logged = SentryAppWebhookRequestsBuffer(get_redis(), sentry_app.id).find_request(open_id) if open_id else None
    messages = read_log_messages(sentry_app, filters)
    return {
        "log_filters": filters,
        "messages": messages,
        "latest": newest_date(messages, ""),
        "event_types": EVENT_TYPES,
        "status_classes": STATUS_CLASS_LABELS,
        "status_label": label_of,
        "inspected": inspection(sentry_app, logged, role) if logged else None,
    }


def inspection(sentry_app: SentryApp, logged: LoggedRequest, role: str) -> dict:
    """Return what the inspector panel shows of one request: signature values to no one (see ``mask_signature``);
    header values and bodies to owners and managers only."""
    manager = role in MANAGING_ROLES
    entry, details = logged.entry, logged.details or {}
    body, body_whole = logged.readable_body()
    legacy_headers = entry.get("request_headers", "") if not details else ""
    inspected = {
        "entry": entry,
        "kept": bool(details),
        "message_id": logged.message_id,
        "restricted": not manager,
        "request_headers": masked_headers(logged.request_headers),
        "legacy_headers": mask_signatures_in(legacy_headers),
        "body": body,
        "body_whole": body_whole,
        "response_headers": list(details.get("response_headers", {}).items()),
        # A failure logged before failures were explained kept the library's text as its "body": not shown.
        "response_body": details.get("response_body", "") if details or not entry["response_code"] else
        entry.get("response_body", ""),
        "can_resend": manager,
        "refusal": resend_refusal(sentry_app, logged) if manager else None,
        "status_label": label_of(entry),
    }
    if not manager:  # a member sees which headers were sent and what came back, not the values or the bodies
        inspected.update(request_headers=[(name, "", False) for name in logged.request_headers],
                         response_headers=[(name, "") for name, _ in inspected["response_headers"]],
                         legacy_headers="", body="", body_whole=True, response_body="")
    return inspected


def find_or_404(sentry_app: SentryApp, request_id: str) -> LoggedRequest:
    logged = SentryAppWebhookRequestsBuffer(get_redis(), sentry_app.id).find_request(request_id)
    if logged is None:
        abort(404)
    return logged


def opened_url(organization: Organization, sentry_app: SentryApp, request_id: str) -> str:
    """The app page with ``request_id`` open (what the row's link does without JavaScript)."""
    return url_for("apps.app_detail", org_slug=organization.slug, app_slug=sentry_app.slug, open=request_id,
                   _anchor=f"inspect-{request_id}")


@bp.route("/orgs/<org_slug>/apps/<app_slug>/requests")
@login_required
def rows(org_slug, app_slug):
    """Return the messages with an attempt newer than ``after`` (the htmx poller), whole, under a fresh poller;
    static/request_log.js puts each in place of its older copy, keeping the attempts opened there."""
    organization, _ = get_org_or_404(org_slug)
    sentry_app = get_app_or_404(organization, app_slug)
    filters = LogFilters.from_args(request.args)
    after = request.args.get("after") or None
    messages = read_log_messages(sentry_app, filters, after)
    if after and not messages:
        return "", 204  # nothing new: htmx keeps the current poller and polls again
    response = make_response(render_template(
        "apps/_log_messages.html", organization=organization, sentry_app=sentry_app, messages=messages,
        log_filters=filters, status_label=label_of, inspected=None, latest=newest_date(messages, after),
    ))
    response.headers["Vary"] = "HX-Request"
    return response


@bp.route("/orgs/<org_slug>/apps/<app_slug>/requests/<request_id>")
@login_required
def inspect(org_slug, app_slug, request_id):
    """Return the inspector row of one request (htmx), or the app page with it open."""
    organization, role = get_org_or_404(org_slug)
    sentry_app = get_app_or_404(organization, app_slug)
    logged = find_or_404(sentry_app, request_id)
    if not is_htmx(request):
        return redirect(opened_url(organization, sentry_app, request_id))
    response = make_response(render_template(
        "apps/_log_inspector.html", organization=organization, sentry_app=sentry_app,
        inspected=inspection(sentry_app, logged, role),
    ))
    response.headers["Vary"] = "HX-Request"
    return response


@bp.route("/orgs/<org_slug>/apps/<app_slug>/requests/<request_id>/resend", methods=["POST"])
@login_required
def resend(org_slug, app_slug, request_id):
    """Queue the request's message again (owners and managers); refused with 409 and the reason."""
    organization, _, sentry_app = get_managed_app_or_404(org_slug, app_slug)
    logged = find_or_404(sentry_app, request_id)
    try:
        resend_logged_request(sentry_app, logged)
    except ResendRefused as exc:
        message, status = str(exc), 409
    else:
        message, status = RESENT, 200
    if is_htmx(request):
        return render_template("apps/_resend_result.html", message=message, refused=status != 200), status
    flash(message, "success" if status == 200 else "error")
    return redirect(opened_url(organization, sentry_app, request_id))


RECOVER_DEFAULT_HOURS = 24


@bp.route("/orgs/<org_slug>/apps/<app_slug>/recover", methods=["GET", "POST"])
@login_required
def recover(org_slug, app_slug):
    """Resend every message that failed since a moment (owners and managers): a page says how many, then asks.

    ``since`` is a UTC time (``YYYY-MM-DDTHH:MM``, what a datetime-local field sends); by default a day ago.
    """
    organization, _, sentry_app = get_managed_app_or_404(org_slug, app_slug)
    default = (clock.now() - timedelta(hours=RECOVER_DEFAULT_HOURS)).strftime("%Y-%m-%dT%H:%M")
    raw = (request.values.get("since") or default).strip()
    try:
        since = datetime.fromisoformat(raw)
    except ValueError:
        since, error = None, "Enter a time such as 2026-11-01T09:30 (UTC)."
    else:
        error = None if since.tzinfo is None else "Enter the time without a time zone: it is read as UTC."
    if error:
        return render_template("apps/recover.html", organization=organization, sentry_app=sentry_app, since=raw,
                               error=error, messages=[]), 400
    if request.method == "POST":
        try:
            job_ids = resend_failed_messages(sentry_app, since)
        except ResendRefused as exc:
            flash(str(exc), "error")
        else:
            count = len(job_ids)
            flash(f"Resending {count} failed message{'s' if count != 1 else ''} since {since:%Y-%m-%d %H:%M} UTC, each "
                  "under its own webhook-id; their attempts appear at the top of the log, marked \u201cresend\u201d.",
                  "success")
        return redirect(url_for("apps.app_detail", org_slug=org_slug, app_slug=app_slug, _anchor="request-log"))
    messages = failed_messages(sentry_app, since)
    return render_template("apps/recover.html", organization=organization, sentry_app=sentry_app,
                           since=since.strftime("%Y-%m-%dT%H:%M"), error=None, messages=messages)
