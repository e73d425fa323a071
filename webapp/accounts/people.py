"""Create people, organisations and memberships (used by the CLI and the demo); check a login."""

from __future__ import annotations

import functools
import re
import secrets

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from ..core.audit import changed_fields, record_audit
from ..core.extensions import db
from ..core.names import SLUG_RE, has_control_characters
from ..models import ROLES, Membership, Organization, User, find_user_by_email
from .email_address import EmailAddressError, normalize_email


class AccountError(ValueError):
    """The account cannot be created as asked; the message says why."""


def authenticate(email: str, password: str) -> User | None:
    """Return the user with this email and password, else None; an unknown email costs the same work.

    Until the password matches, a known and an unknown email run the same statement (one row or none, the
    person's memberships not loaded) and one hash check: an unknown email is checked against a hash of the
    same algorithm and cost, so neither the time of the answer nor its queries tell who has an account.
    """
    row = db.session.execute(select(User.id, User.password_hash).where(User.email == email.strip().lower())).first()
    matches = check_password_hash(row.password_hash if row is not None else _dummy_password_hash(), password)
    return db.session.get(User, row.id) if matches and row is not None else None


@functools.cache
def _dummy_password_hash() -> str:
    return generate_password_hash(secrets.token_urlsafe(16))  # as User.set_password does


def get_or_create_organization(slug: str, name: str | None = None) -> Organization:
    if not SLUG_RE.match(slug):
        raise AccountError(f"Organisation slug {slug!r} must be lowercase letters, digits and dashes (at most 50).")
    if name is not None and has_control_characters(name):
        raise AccountError("The organisation name must not contain line breaks, tabs or other control characters.")
    organization = db.session.scalar(select(Organization).where(Organization.slug == slug))
    if organization is None:
        organization = Organization(slug=slug, name=name or slug.replace("-", " ").title())
        db.session.add(organization)
        db.session.flush()
    return organization


def create_user(email: str, password: str, org_slug: str, role: str = "owner", name: str = "") -> User:
    """Create a user who is a member of ``org_slug`` (created if missing) with ``role``; commit."""
    try:
        email = normalize_email(email)
    except EmailAddressError as exc:
        raise AccountError(f"{email!r} is not an email address Hookline can send to. {exc}") from None
    if has_control_characters(name):
        raise AccountError("The name must not contain line breaks, tabs or other control characters.")
    if len(password) < 8:
        raise AccountError("The password must be at least 8 characters long.")
    if role not in ROLES:
        raise AccountError(f"Role must be one of {', '.join(ROLES)}.")
    if find_user_by_email(email) is not None:
        raise AccountError(f"A user with the email {email} already exists.")
    organization = get_or_create_organization(org_slug)
    user = User(email=email, name=name or email.split("@")[0])
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    db.session.add(Membership(user_id=user.id, organization_id=organization.id, role=role))
    db.session.commit()
    return user




def rename_organization(organization: Organization, name: str, slug: str, actor_id: int | None = None) -> None:
    """Change the organisation's name and slug; audit; commit (the model cache is invalidated on commit)."""
    name, slug = (name or "").strip(), (slug or "").strip()
    if not name or len(name) > 100:
        raise AccountError("Give the organisation a name of at most 100 characters.")
    if has_control_characters(name):
        raise AccountError("The organisation name must not contain line breaks, tabs or other control characters.")
    if not SLUG_RE.match(slug):
        raise AccountError(f"Slug {slug!r} must be lowercase letters, digits and dashes (at most 50).")
    other = db.session.scalar(select(Organization).where(Organization.slug == slug, Organization.id != organization.id))
    if other is not None:
        raise AccountError(f"The slug {slug!r} is taken.")
    changes = changed_fields({"name": organization.name, "slug": organization.slug}, {"name": name, "slug": slug})
    if changes:
        record_audit(organization.id, "org.edit", actor_id=actor_id, target_object=organization.id,
                     target_label=name, data=changes)
    organization.name, organization.slug = name, slug
    db.session.commit()
