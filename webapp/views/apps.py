"""Internal apps: list, register, app page with secret, test alert and request log; disable, delete."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from ..apps.internal_apps import (
    AppValidationError, app_health, app_warnings, delete_internal_app, disable_app, enable_app, enqueue_test_alert,
    get_test_alert_result, health_for_apps, last_deliveries, list_organization_apps, register_internal_app,
    rotate_secret, update_internal_app,
)
from ..core.extensions import db
from ..core.forms import AppForm, EmptyForm
from ..dispatch.delivery import missed_delivery_count
from ..dispatch.health import failing_since
from ..dispatch.signing import standard_webhooks_secret
from ..models import MANAGING_ROLES
from .helpers import (
    confirm_step, confirmed, get_app_or_404, get_managed_app_or_404, get_org_or_404, is_htmx, require_manager,
)
from .request_log import log_context

bp = Blueprint("apps", __name__)

# htmx stops polling when a response has this status.
HTMX_STOP_POLLING = 286
SPARKLINE_DAYS = 7  # the apps list's sparkline
FAILING_STREAK_DAYS = 30  # how far back "failing since" looks


@bp.route("/")
@login_required
def index():
    memberships = current_user.memberships
    if len(memberships) == 1:
        return redirect(url_for("apps.list_apps", org_slug=memberships[0].organization.slug))
    return render_template("orgs.html", memberships=memberships)


@bp.route("/orgs/<org_slug>/apps")
@login_required
def list_apps(org_slug):
    organization, role = get_org_or_404(org_slug)
    sentry_apps = list_organization_apps(organization.id)
    health = health_for_apps(sentry_apps, SPARKLINE_DAYS)
    failing = {app_id: failing_since(history) for app_id, history in health.items()}
    # A streak that fills the sparkline's week may have begun earlier: read those few apps' month (the whole
    # list's month is four times the Redis reads, for apps that almost never need it).
    long_streaks = [sentry_app for sentry_app in sentry_apps if failing[sentry_app.id] == health[sentry_app.id][0][0]]
    if long_streaks:
        failing.update({app_id: failing_since(history)
                        for app_id, history in health_for_apps(long_streaks, FAILING_STREAK_DAYS).items()})
    return render_template(
        "apps/list.html", organization=organization, role=role, sentry_apps=sentry_apps, health=health,
        failing=failing, last=last_deliveries([sentry_app.id for sentry_app in sentry_apps]),
    )


@bp.route("/orgs/<org_slug>/apps/new", methods=["GET", "POST"])
@login_required
def new_app(org_slug):
    organization, role = get_org_or_404(org_slug)
    require_manager(role)
    form = AppForm()
    if form.validate_on_submit():
        try:
            sentry_app = register_internal_app(
                organization, form.name.data, form.webhook_url.data, form.selected_resources(), current_user.id
            )
        except AppValidationError as exc:
            for field, message in exc.errors.items():
                form[field if field in form else "name"].errors.append(message)
        else:
            flash(f"Registered {sentry_app.name}.", "success")
            for warning in app_warnings():
                flash(warning, "warning")
            return redirect(url_for("apps.app_detail", org_slug=org_slug, app_slug=sentry_app.slug))
    status = 400 if form.errors else 200
    return render_template("apps/new.html", organization=organization, form=form), status


@bp.route("/orgs/<org_slug>/apps/<app_slug>/edit", methods=["GET", "POST"])
@login_required
def edit_app(org_slug, app_slug):
    organization, role, sentry_app = get_managed_app_or_404(org_slug, app_slug)
    form = AppForm(obj=None if request.method == "POST" else sentry_app)
    if request.method == "GET":
        for resource in sentry_app.resource_list:
            form[resource].data = True
    if form.validate_on_submit():
        try:
            changes = update_internal_app(sentry_app, form.name.data, form.webhook_url.data,
                                          form.selected_resources(), current_user.id)
        except AppValidationError as exc:
            db.session.rollback()
            for field, message in exc.errors.items():
                form[field if field in form else "name"].errors.append(message)
        else:
            flash(f"Saved {sentry_app.name}." if changes else "Nothing changed.", "success")
            for warning in app_warnings():
                flash(warning, "warning")
            return redirect(url_for("apps.app_detail", org_slug=org_slug, app_slug=app_slug))
    status = 400 if form.errors else 200
    return render_template("apps/edit.html", organization=organization, sentry_app=sentry_app, form=form), status


@bp.route("/orgs/<org_slug>/apps/<app_slug>")
@login_required
def app_detail(org_slug, app_slug):
    organization, role = get_org_or_404(org_slug)
    sentry_app = get_app_or_404(organization, app_slug)
    return _render_detail(organization, sentry_app, role)


def _render_detail(organization, sentry_app, role, revealed=False):
    history = app_health(sentry_app, FAILING_STREAK_DAYS)
    streak_start = failing_since(history)
    range_days = current_app.config["BROKEN_RANGE_DAYS"]
    return render_template(
        "apps/detail.html",
        organization=organization,
        sentry_app=sentry_app,
        can_manage=role in MANAGING_ROLES,
        revealed=revealed,
        whsec=standard_webhooks_secret(sentry_app.client_secret) if revealed else None,
        form=EmptyForm(),
        referrer=request.args.get("referrer"),
        history=history,
        failing_since=streak_start,
        disable_on=streak_start + timedelta(days=range_days - 1) if streak_start else None,
        missed=missed_delivery_count(sentry_app.id),
        **log_context(sentry_app, role),
    )


@bp.route("/orgs/<org_slug>/apps/<app_slug>/enable", methods=["POST"])
@login_required
def enable(org_slug, app_slug):
    organization, role, sentry_app = get_managed_app_or_404(org_slug, app_slug)
    replayed = enable_app(sentry_app, current_user.id, replay=request.form.get("replay") == "1")
    if replayed is None:
        flash(f"{sentry_app.name} is already enabled.", "info")
    elif replayed:
        flash(f"{sentry_app.name} is enabled again; {replayed} missed deliveries are being sent.", "success")
    else:
        flash(f"{sentry_app.name} is enabled again.", "success")
    return redirect(url_for("apps.app_detail", org_slug=org_slug, app_slug=app_slug))


@bp.route("/orgs/<org_slug>/apps/<app_slug>/disable", methods=["GET", "POST"])
@login_required
def disable(org_slug, app_slug):
    """Disable the app by hand with a reason. This page is the confirmation: only its own form (confirm=1) acts."""
    organization, role, sentry_app = get_managed_app_or_404(org_slug, app_slug)
    error = None
    if request.method == "POST" and confirmed():
        try:
            changed = disable_app(sentry_app, current_user.id, request.form.get("reason", ""))
        except AppValidationError as exc:
            error = exc.errors["reason"]
        else:
            flash(f"{sentry_app.name} is disabled." if changed else f"{sentry_app.name} is already disabled.", "info")
            return redirect(url_for("apps.app_detail", org_slug=org_slug, app_slug=app_slug), 303)
    return render_template("apps/disable.html", organization=organization, sentry_app=sentry_app, error=error,
                           reason=request.form.get("reason", "")), 400 if error else 200


@bp.route("/orgs/<org_slug>/apps/<app_slug>/delete", methods=["GET", "POST"])
@login_required
def delete(org_slug, app_slug):
    """Delete the app once the person has typed its name."""
    organization, role, sentry_app = get_managed_app_or_404(org_slug, app_slug)
    error = None
    if request.method == "POST" and EmptyForm().validate_on_submit():
        if request.form.get("name", "").strip() == sentry_app.name:
            name = sentry_app.name
            delete_internal_app(sentry_app, current_user.id)
            flash(f"Deleted {name}; it receives no more webhooks.", "success")
            return redirect(url_for("apps.list_apps", org_slug=org_slug), 303)
        error = f"Type {sentry_app.name} exactly to delete it."
    return render_template("apps/delete.html", organization=organization, sentry_app=sentry_app, error=error,
                           form=EmptyForm()), 400 if error else 200


@bp.route("/orgs/<org_slug>/apps/<app_slug>/rotate-secret", methods=["POST"])
@login_required
def rotate(org_slug, app_slug):
    organization, role, sentry_app = get_managed_app_or_404(org_slug, app_slug)
    if not confirmed():
        return confirm_step(f"Rotate the secret of {sentry_app.name}?",
                            "A new secret signs every webhook from now on; the current one keeps signing beside it for "
                            "24 hours, so update your receiver within a day.", "Rotate secret",
                            url_for("apps.app_detail", org_slug=org_slug, app_slug=app_slug), organization)
    rotate_secret(sentry_app, current_user.id)
    flash("New secret created. The old one keeps signing beside it for 24 hours; update your receiver.", "success")
    return _render_detail(organization, sentry_app, role, revealed=True)


@bp.route("/orgs/<org_slug>/apps/<app_slug>/secret", methods=["POST"])
@login_required
def reveal_secret(org_slug, app_slug):
    organization, role, sentry_app = get_managed_app_or_404(org_slug, app_slug)
    if is_htmx(request):
        whsec = standard_webhooks_secret(sentry_app.client_secret)
        return render_template("apps/_secret.html", sentry_app=sentry_app, revealed=True, whsec=whsec, can_manage=True)
    return _render_detail(organization, sentry_app, role, revealed=True)


@bp.route("/orgs/<org_slug>/apps/<app_slug>/test-alert", methods=["POST"])
@login_required
def send_test(org_slug, app_slug):
    organization, role, sentry_app = get_managed_app_or_404(org_slug, app_slug)
    job_id = enqueue_test_alert(sentry_app, current_user.id)
    if is_htmx(request):
        return render_template("apps/_test_result.html", sentry_app=sentry_app, job_id=job_id, result=None)
    flash("Test alert queued; its request appears in the log below when the worker has sent it.", "info")
    return redirect(url_for("apps.app_detail", org_slug=org_slug, app_slug=app_slug))


@bp.route("/orgs/<org_slug>/apps/<app_slug>/test-alert/<job_id>")
@login_required
def test_result(org_slug, app_slug, job_id):
    organization, _ = get_org_or_404(org_slug)
    sentry_app = get_app_or_404(organization, app_slug)
    try:
        result = get_test_alert_result(sentry_app, job_id)
    except LookupError:
        abort(404)
    body = render_template("apps/_test_result.html", sentry_app=sentry_app, job_id=job_id, result=result)
    return body, (200 if result is None else HTMX_STOP_POLLING)
