"""A project's client keys (DSNs) on its page: create, disable or enable, delete (owners and managers)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from ..apps.project_keys import ProjectKeyError, active_key_count, create_key, delete_key, update_key
from ..core.extensions import db
from ..core.forms import EmptyForm
from .helpers import get_key_or_404, get_org_or_404, get_project_or_404, require_manager
from .projects import render_detail

bp = Blueprint("project_keys", __name__, url_prefix="/orgs/<org_slug>/projects/<project_slug>/keys")

NO_ACTIVE_KEY = "{project} has no active key now: it refuses every event until you create or enable one."


@bp.route("", methods=["POST"])
@login_required
def create(org_slug, project_slug):
    organization, role, project = _managed_project(org_slug, project_slug)
    if EmptyForm().validate_on_submit():
        try:
            key = create_key(project, request.form.get("label", ""), current_user.id)
        except ProjectKeyError as exc:
            db.session.rollback()
            return render_detail(organization, role, project, errors={"label": str(exc)})
        flash(f"Created key {key.label}; point an application at its DSN below.", "success")
    return _back_to_keys(org_slug, project_slug)


@bp.route("/<public_key>/<any(enable, disable):action>", methods=["POST"])
@login_required
def set_active(org_slug, project_slug, public_key, action):
    _, _, project = _managed_project(org_slug, project_slug)
    key = get_key_or_404(project, public_key)
    if EmptyForm().validate_on_submit():
        update_key(key, {"is_active": action == "enable"}, current_user.id)
        if action == "enable":
            flash(f"Key {key.label} is enabled: events sent with its DSN are accepted again.", "success")
        else:
            flash(f"Key {key.label} is disabled: events sent with its DSN are refused from now on.", "info")
            _warn_if_no_active_key(project)
    return _back_to_keys(org_slug, project_slug)


@bp.route("/<public_key>/delete", methods=["GET", "POST"])
@login_required
def delete(org_slug, project_slug, public_key):
    """Ask for confirmation (GET), then delete the key (POST)."""
    organization, _, project = _managed_project(org_slug, project_slug)
    key = get_key_or_404(project, public_key)
    if request.method == "POST" and EmptyForm().validate_on_submit():
        delete_key(key, current_user.id)
        flash(f"Deleted key {key.label}; events sent with its DSN are refused from now on.", "info")
        _warn_if_no_active_key(project)
        return _back_to_keys(org_slug, project_slug)
    last_active = key.is_active and active_key_count(project.id) == 1
    return render_template("projects/key_delete.html", organization=organization, project=project, key=key,
                           last_active=last_active, form=EmptyForm())


def _managed_project(org_slug: str, project_slug: str):
    """Load the organisation and project (404 outside the user's orgs), and require an owner or manager (403)."""
    organization, role = get_org_or_404(org_slug)
    project = get_project_or_404(organization, project_slug)
    require_manager(role)
    return organization, role, project


def _warn_if_no_active_key(project) -> None:
    if active_key_count(project.id) == 0:
        flash(NO_ACTIVE_KEY.format(project=project.name), "warning")


def _back_to_keys(org_slug: str, project_slug: str):
    return redirect(url_for("projects.detail", org_slug=org_slug, project_slug=project_slug, _anchor="client-keys"))
