"""Organisation settings (owners) and the audit log (owners and managers)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from ..accounts.audit_search import AuditFilterError, AuditFilters, actor_choices, page_number, parse_filters, read_page
from ..accounts.people import AccountError, rename_organization
from ..core.audit import EVENTS, describe, event_label
from ..core.extensions import db
from ..core.forms import EmptyForm
from .helpers import get_org_or_404, require_manager

bp = Blueprint("orgs", __name__, url_prefix="/orgs/<org_slug>")


@bp.route("/settings", methods=["GET", "POST"])
@login_required
def settings(org_slug):
    organization, role = get_org_or_404(org_slug)
    if role != "owner":
        abort(403, description="Only owners can change the organisation's settings.")
    error = None
    if request.method == "POST" and EmptyForm().validate_on_submit():
        try:
            rename_organization(organization, request.form.get("name", ""), request.form.get("slug", ""),
                                current_user.id)
        except AccountError as exc:
            db.session.rollback()
            error = str(exc)
        else:
            flash("Saved. Webhooks from now on carry the new name and slug.", "success")
            return redirect(url_for("orgs.settings", org_slug=organization.slug))
    values = request.form if request.method == "POST" else {"name": organization.name, "slug": organization.slug}
    return render_template("orgs/settings.html", organization=organization, values=values, error=error,
                           form=EmptyForm()), 400 if error else 200


@bp.route("/audit-log")
@login_required
def audit_log(org_slug):
    """The log, newest first, PAGE_SIZE a page; a bad filter is named next to its field (400), with no rows."""
    organization, role = get_org_or_404(org_slug)
    require_manager(role)
    errors, page = {}, None
    try:
        filters = parse_filters(request.args, organization.id)
    except AuditFilterError as exc:
        errors, filters = exc.errors, AuditFilters()
    else:
        page = read_page(organization.id, filters, page_number(request.args.get("page")))
    return render_template(
        "orgs/audit_log.html", organization=organization, filters=filters, page=page, errors=errors,
        values=request.args, events=EVENTS, actors=actor_choices(organization.id), describe=describe,
        event_label=event_label,
    ), 400 if errors else 200
