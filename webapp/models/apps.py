"""Internal apps (Sentry's "SentryApp") and their installations."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.extensions import db
from .accounts import Organization, User, utcnow

RESOURCES = ("issue", "error", "comment")


class SentryApp(db.Model):
    """An internal integration: where an organisation wants its alerts delivered."""

    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=lambda: str(uuid.uuid4()))
    webhook_url: Mapped[str] = mapped_column(Text)
    client_secret: Mapped[str] = mapped_column(String(64), default=lambda: secrets.token_hex(32))
    # After a rotation the old secret keeps signing beside the new one until this time.
    previous_client_secret: Mapped[str | None] = mapped_column(String(64), default=None)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    # Space-separated subset of RESOURCES.
    resources: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(20), default="enabled")
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)
    disabled_reason: Mapped[str | None] = mapped_column(Text, default=None)
    # The person who disabled the app by hand; None when Hookline disabled it (or the person was deleted).
    disabled_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), default=None)
    date_added: Mapped[datetime] = mapped_column(default=utcnow)
    date_updated: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    organization: Mapped[Organization] = relationship(lazy="joined")
    disabled_by: Mapped[User | None] = relationship()
    installation: Mapped[SentryAppInstallation | None] = relationship(
        # Joined: every delivery needs the installation uuid, so load it with the app (one query, not two).
        back_populates="sentry_app", uselist=False, cascade="all, delete-orphan", lazy="joined"
    )

    @property
    def resource_list(self) -> list[str]:
        return self.resources.split()

    @property
    def is_enabled(self) -> bool:
        return self.status == "enabled"


class SentryAppInstallation(db.Model):
    """The app installed in an organisation; its uuid is what payloads carry as ``installation.uuid``."""

    id: Mapped[int] = mapped_column(primary_key=True)
    sentry_app_id: Mapped[int] = mapped_column(ForeignKey("sentry_app.id", ondelete="CASCADE"), unique=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=lambda: str(uuid.uuid4()))
    date_added: Mapped[datetime] = mapped_column(default=utcnow)

    sentry_app: Mapped[SentryApp] = relationship(back_populates="installation")
