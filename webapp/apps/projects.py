"""Projects: create them (each starts with one client key, whose DSN sentry-sdk is pointed at) and set their quota."""

from __future__ import annotations

from sqlalchemy import func, select

from ..core.audit import record_audit
from ..core.extensions import db
from ..core.names import SLUG_RE, has_control_characters
from ..models import Organization, Project, slugify
from .project_keys import RATE_LIMIT_MAX, default_key


class ProjectError(ValueError):
    """The project cannot be created as asked; the message says why."""


def create_project(organization: Organization, name: str, slug: str | None = None,
                   actor_id: int | None = None) -> Project:
    """Validate, create the project with its first client key, audit and commit; return the project."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ProjectError("Give the project a name of at most 100 characters.")
    if has_control_characters(name):
        raise ProjectError("The project name must not contain line breaks, tabs or other control characters.")
    slug = (slug or slugify(name)).strip()
    if not SLUG_RE.match(slug):
        raise ProjectError(f"Project slug {slug!r} must be lowercase letters, digits and dashes.")
    taken = db.session.scalar(
        select(func.count()).where(Project.organization_id == organization.id, Project.slug == slug)
    )
    if taken:
        raise ProjectError(f"This organisation already has a project {slug!r}.")
    project = Project(organization_id=organization.id, name=name, slug=slug, client_keys=[default_key()])
    db.session.add(project)
    db.session.flush()
    record_audit(organization.id, "project.create", actor_id=actor_id, target_object=project.id,
                 target_label=project.name, data={"slug": project.slug})
    db.session.commit()
    return project


def list_projects(organization_id: int) -> list[Project]:
    return list(db.session.scalars(
        select(Project).where(Project.organization_id == organization_id).order_by(Project.name)
    ))


def set_key_rate_limit(project: Project, raw: str, actor_id: int | None) -> int | None:
    """Set how many events a minute each key of the project may send (blank: INGEST_RATE_LIMIT); audit; commit."""
    raw = (raw or "").strip()
    if raw and not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= RATE_LIMIT_MAX):
        raise ProjectError(f"Events per minute per key must be a whole number from 1 to {RATE_LIMIT_MAX}, "
                           "or blank for the default.")
    limit = int(raw) if raw else None
    if limit != project.key_rate_limit:
        record_audit(project.organization_id, "project.edit", actor_id=actor_id, target_object=project.id,
                     target_label=project.name, data={"key_rate_limit": [project.key_rate_limit, limit]})
        project.key_rate_limit = limit
        db.session.commit()
    return limit
