"""A project's client keys (DSNs): create, rename, enable or disable, limit and delete them; each change audited."""

from __future__ import annotations

from sqlalchemy import func, select

from ..core.audit import changed_fields, record_audit
from ..core.extensions import db
from ..models import Project, ProjectKey

LABEL_MAX = 64
RATE_LIMIT_MAX = 1_000_000  # events a minute, the most a key or a project's setting may allow


class ProjectKeyError(ValueError):
    """The key cannot be created or changed as asked; ``field`` names the bad value, the message says why."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def clean_label(label) -> str:
    label = label.strip() if isinstance(label, str) else ""
    if not label or len(label) > LABEL_MAX:
        raise ProjectKeyError("label", f"Give the key a label of 1 to {LABEL_MAX} characters.")
    if not label.isprintable():  # control characters, NUL (which PostgreSQL refuses), lone surrogates
        raise ProjectKeyError("label", "The label may not contain control or unprintable characters.")
    return label


def clean_rate_limit(value) -> int | None:
    """Return ``value`` if it is None (no limit of its own) or a whole number of events a minute in range."""
    whole = isinstance(value, int) and not isinstance(value, bool)
    if value is not None and not (whole and 1 <= value <= RATE_LIMIT_MAX):
        raise ProjectKeyError("rate_limit", f"The rate limit must be a whole number of events a minute from 1 to "
                                            f"{RATE_LIMIT_MAX}, or none.")
    return value


def effective_rate_limit(key, project, default: int) -> int:
    """Return the events a minute ``key`` may send: its own limit, else its project's per-key limit, else ``default``."""
    return key.rate_limit or project.key_rate_limit or default


def default_key() -> ProjectKey:
    """Return the key a new project starts with."""
    return ProjectKey(label="Default")


def create_key(project: Project, label: str, actor_id: int | None, rate_limit: int | None = None) -> ProjectKey:
    """Validate, add an active key to ``project``, audit and commit; return the key."""
    key = ProjectKey(project_id=project.id, label=clean_label(label), rate_limit=clean_rate_limit(rate_limit))
    db.session.add(key)
    db.session.flush()
    _audit(key, project, "project-key.create", actor_id, {"label": key.label, "rate_limit": key.rate_limit})
    db.session.commit()
    return key


def update_key(key: ProjectKey, changes: dict, actor_id: int | None) -> dict:
    """Validate and apply ``changes`` (label, is_active, rate_limit), audit what changed, commit; return that."""
    cleaners = {"label": clean_label, "is_active": _clean_flag, "rate_limit": clean_rate_limit}
    cleaned = {field: cleaners[field](value) for field, value in changes.items()}
    changed = {field: value for field, value in cleaned.items() if getattr(key, field) != value}
    if changed:
        edits = changed_fields({field: getattr(key, field) for field in changed}, changed)
        for field, value in changed.items():
            setattr(key, field, value)
        # Turning a key off or on is its own event (it refuses or lets in an application); other changes are edits.
        if "is_active" in edits:
            _audit(key, key.project, "project-key.enable" if edits.pop("is_active")[1] else "project-key.disable",
                   actor_id, {})
        if edits:
            _audit(key, key.project, "project-key.edit", actor_id, edits)
        db.session.commit()
    return changed


def delete_key(key: ProjectKey, actor_id: int | None) -> None:
    """Delete the key (applications sending with it are refused from the next request on); audit; commit."""
    _audit(key, key.project, "project-key.remove", actor_id, {"label": key.label})
    db.session.delete(key)
    db.session.commit()


def active_key_count(project_id: int) -> int:
    return db.session.scalar(
        select(func.count()).where(ProjectKey.project_id == project_id, ProjectKey.is_active.is_(True)))


def _clean_flag(value) -> bool:
    if not isinstance(value, bool):
        raise ProjectKeyError("is_active", "Active must be true or false.")
    return value


def _audit(key: ProjectKey, project: Project, event: str, actor_id: int | None, data: dict) -> None:
    record_audit(project.organization_id, event, actor_id=actor_id, target_object=key.id, target_label=key.label,
                 data={"project": project.slug, "public_key": key.public_key, **data})
