"""Personal API tokens: shown once, stored as a SHA-256 hash."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.extensions import db
from .accounts import User, utcnow


class ApiToken(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    # sha256 hex of the whole token; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters, so a person can tell their tokens apart.
    prefix: Mapped[str] = mapped_column(String(12))
    date_added: Mapped[datetime] = mapped_column(default=utcnow)
    last_used: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User] = relationship(lazy="joined")
