"""Organisation settings (owners) and the audit log (owners and managers)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required

from ..accounts import AccountError, rename_organization
from ..audit import list_audit_entries
from ..extensions import db
from ..forms import EmptyForm
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
            rename_organization(organization, request.form.get("name", ""), request.form.get("slug", ""))
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
    organization, role = get_org_or_404(org_slug)
    require_manager(role)
    return render_template("orgs/audit_log.html", organization=organization,
                           entries=list_audit_entries(organization.id))
