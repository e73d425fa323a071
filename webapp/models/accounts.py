"""Organisations, people and their roles."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from ..core import clock
from ..core.extensions import db

ROLES = ("owner", "manager", "member")
MANAGING_ROLES = frozenset({"owner", "manager"})


def utcnow() -> datetime:
    """Return naive UTC (how rows store time) from Hookline's one clock."""
    return clock.now().replace(tzinfo=None)


def slugify(text: str) -> str:
    """Return a lowercase, dash-separated slug of ``text`` (at most 50 characters)."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:50].strip("-") or "app"


class Organization(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    date_added: Mapped[datetime] = mapped_column(default=utcnow)


class User(UserMixin, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    date_joined: Mapped[datetime] = mapped_column(default=utcnow)
    # Every session cookie names this token; a new one (``end_sessions``) ends them all, copied ones too.
    session_token: Mapped[str] = mapped_column(String(32), default=lambda: secrets.token_hex(16))

    memberships: Mapped[list[Membership]] = relationship(back_populates="user", lazy="selectin")

    def get_id(self) -> str:
        """What the session (and the remember-me cookie) keeps: the user's id and current session token."""
        return f"{self.id}:{self.session_token}"

    def end_sessions(self) -> None:
        """End every session of this person, on every device (a copied cookie too); the caller commits."""
        self.session_token = secrets.token_hex(16)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def role_in(self, organization_id: int) -> str | None:
        for membership in self.memberships:
            if membership.organization_id == organization_id:
                return membership.role
        return None


class Membership(db.Model):
    __table_args__ = (UniqueConstraint("user_id", "organization_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20), default="member")
    date_added: Mapped[datetime] = mapped_column(default=utcnow)  # when the person joined the organisation

    user: Mapped[User] = relationship(back_populates="memberships")
    organization: Mapped[Organization] = relationship(lazy="joined")


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == email.strip().lower()))
