"""Projects: create them; each has a DSN that sentry-sdk is pointed at."""

from __future__ import annotations

from sqlalchemy import func, select

from .accounts import SLUG_RE
from .extensions import db
from .models import Organization, Project, slugify
from .names import has_control_characters


class ProjectError(ValueError):
    """The project cannot be created as asked; the message says why."""


def create_project(organization: Organization, name: str, slug: str | None = None) -> Project:
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
    project = Project(organization_id=organization.id, name=name, slug=slug)
    db.session.add(project)
    db.session.commit()
    return project


def list_projects(organization_id: int) -> list[Project]:
    return list(db.session.scalars(
        select(Project).where(Project.organization_id == organization_id).order_by(Project.name)
    ))
