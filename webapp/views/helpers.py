"""Load-or-404 helpers that keep every query inside the organisations the user belongs to; the confirm step."""

from __future__ import annotations

from flask import abort, render_template, request
from flask_login import current_user
from sqlalchemy import select

from ..core.extensions import db
from ..core.templating import remember_organization
from ..models import MANAGING_ROLES, Group, Organization, Project, ProjectKey, SentryApp


def get_org_or_404(org_slug: str) -> tuple[Organization, str]:
    """Return the organisation and the current user's role in it; 404 if they are not a member."""
    for membership in current_user.memberships:
        if membership.organization.slug == org_slug:
            remember_organization(org_slug)
            return membership.organization, membership.role
    abort(404)


def get_app_or_404(organization: Organization, app_slug: str) -> SentryApp:
    sentry_app = db.session.scalar(
        select(SentryApp).where(SentryApp.organization_id == organization.id, SentryApp.slug == app_slug)
    )
    if sentry_app is None:
        abort(404)
    return sentry_app


def get_managed_app_or_404(org_slug: str, app_slug: str) -> tuple[Organization, str, SentryApp]:
    """Load the organisation and app (404 outside the user's orgs), and require an owner or manager (403)."""
    organization, role = get_org_or_404(org_slug)
    sentry_app = get_app_or_404(organization, app_slug)
    require_manager(role)
    return organization, role, sentry_app


def require_manager(role: str) -> None:
    if role not in MANAGING_ROLES:
        abort(403, description="Only owners and managers of this organisation can do that.")


def is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def get_project_or_404(organization: Organization, project_slug: str) -> Project:
    project = db.session.scalar(
        select(Project).where(Project.organization_id == organization.id, Project.slug == project_slug)
    )
    if project is None:
        abort(404)
    return project


def get_key_or_404(project: Project, public_key: str) -> ProjectKey:
    """Load the project's client key by its public key (the id pages and the API use), else 404."""
    key = db.session.scalar(
        select(ProjectKey).where(ProjectKey.project_id == project.id, ProjectKey.public_key == public_key)
    )
    if key is None:
        abort(404, description="This project has no client key with that id.")
    return key


def get_in_project_or_404(model, project: Project, object_id: int):
    """Load a rule (or any row with ``project_id``) of this project, else 404."""
    row = db.session.get(model, object_id)
    if row is None or row.project_id != project.id:
        abort(404)
    return row


def get_group_or_404(organization: Organization, group_id: int) -> Group:
    group = db.session.get(Group, group_id)
    if group is None or group.project.organization_id != organization.id:
        abort(404)
    return group


def confirmed() -> bool:
    """Has the person confirmed this destructive POST? The dialog (hx-confirm) and the confirm page send confirm=1."""
    return request.form.get("confirm") == "1"


def confirm_step(question: str, consequence: str, button: str, cancel_url: str, organization=None):
    """Render the page that asks once more (where a destructive button lands without JavaScript); it posts the
    same form again with confirm=1."""
    fields = {name: value for name, value in request.form.items() if name not in ("csrf_token", "confirm")}
    return render_template("confirm.html", question=question, consequence=consequence, button=button,
                           cancel_url=cancel_url, action=request.path, fields=fields, organization=organization)


def link_gone(title: str, reason: Exception, status: int):
    """The page for a one-time emailed link that cannot be used (``reason`` says why); nothing was changed."""
    return render_template("error.html", code=status, title=title, message=str(reason), nav_section=None), status
