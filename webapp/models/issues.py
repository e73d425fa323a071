"""Projects, the events they ingest, the issues (groups) events fall into, comments and the activity on issues."""

from __future__ import annotations

import json
import secrets
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.extensions import db
from .accounts import Organization, User, utcnow

LEVELS = ("debug", "info", "warning", "error", "fatal")
ISSUE_STATUSES = ("unresolved", "resolved", "ignored")


def level_rank(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else LEVELS.index("error")


class Project(db.Model):
    __table_args__ = (UniqueConstraint("organization_id", "slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    slug: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(100))
    platform: Mapped[str] = mapped_column(String(50), default="python")
    # Events a minute each key of the project may send unless the key has its own limit; None: INGEST_RATE_LIMIT.
    key_rate_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    date_added: Mapped[datetime] = mapped_column(default=utcnow)

    organization: Mapped[Organization] = relationship(lazy="joined")
    client_keys: Mapped[list[ProjectKey]] = relationship(
        back_populates="project", order_by="ProjectKey.id", cascade="all, delete-orphan", passive_deletes=True)

    def dsn(self, base_url: str) -> str | None:
        """Return the DSN of the project's oldest active key, or None when every key is disabled."""
        key = next((key for key in self.client_keys if key.is_active), None)
        return key.dsn(base_url) if key else None


class ProjectKey(db.Model):
    """A client key of a project: its public key is the DSN's user part, what sentry-sdk sends as sentry_key."""

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(String(32), unique=True, default=lambda: secrets.token_hex(16))
    is_active: Mapped[bool] = mapped_column(default=True)
    # Events a minute this key may send; None: the project's key_rate_limit, else INGEST_RATE_LIMIT.
    rate_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    date_added: Mapped[datetime] = mapped_column(default=utcnow)

    project: Mapped[Project] = relationship(back_populates="client_keys")

    def dsn(self, base_url: str) -> str:
        scheme, rest = base_url.split("://", 1)
        return f"{scheme}://{self.public_key}@{rest}/{self.project_id}"


class Group(db.Model):
    """An issue: events with the same fingerprint in one project."""

    __tablename__ = "sentry_group"  # "group" is an SQL keyword
    __table_args__ = (
        UniqueConstraint("project_id", "fingerprint_hash"),
        UniqueConstraint("project_id", "short_id"),
        # The issues list: a project's issues of one status, most recently seen first.
        Index("ix_sentry_group_project_status_last_seen", "project_id", "status", "last_seen"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    short_id: Mapped[int] = mapped_column(Integer)
    fingerprint_hash: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(255))
    culprit: Mapped[str] = mapped_column(String(255), default="")
    level: Mapped[str] = mapped_column(String(10), default="error")
    platform: Mapped[str] = mapped_column(String(50), default="python")
    metadata_json: Mapped[str] = mapped_column(Text, default="{}")
    status: Mapped[str] = mapped_column(String(20), default="unresolved")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), default=None)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    times_seen: Mapped[int] = mapped_column(Integer, default=0)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    # When a resolved issue last came back: Sentry calls it "regressed" for FRESH_DAYS (issue_status), then "ongoing".
    regressed_at: Mapped[datetime | None] = mapped_column(default=None)
    # How a resolved issue was resolved (Sentry's resolution_type): now, in_next_release or in_release; None else.
    resolution_type: Mapped[str | None] = mapped_column(String(20), default=None)
    # in_release: the release it was fixed in; in_next_release: the project's newest release when it was resolved
    # (events of that release or older ones leave it resolved).
    resolution_release: Mapped[str | None] = mapped_column(String(200), default=None)
    # Why an ignored issue comes back (Sentry's snooze); all None/False: ignored until a person unresolves it.
    ignore_until: Mapped[datetime | None] = mapped_column(default=None)  # the first event after this time
    ignore_count: Mapped[int | None] = mapped_column(Integer, default=None)  # this many more events ...
    ignore_window: Mapped[int | None] = mapped_column(Integer, default=None)  # ... within this many minutes
    ignore_user_count: Mapped[int | None] = mapped_column(Integer, default=None)  # this many more users
    ignore_base_count: Mapped[int | None] = mapped_column(Integer, default=None)  # times_seen when ignored
    ignore_base_users: Mapped[int | None] = mapped_column(Integer, default=None)  # users when ignored
    # Archived until escalating: back when an hour has ignore_count events (ignore_window 60, set by Hookline).
    ignore_until_escalating: Mapped[bool] = mapped_column(default=False, server_default=false())
    # When an ignored issue last came back by itself: Sentry's "escalating" substatus for FRESH_DAYS.
    escalated_at: Mapped[datetime | None] = mapped_column(default=None)

    project: Mapped[Project] = relationship(lazy="joined")
    assignee: Mapped[User | None] = relationship(lazy="joined")

    @property
    def qualified_short_id(self) -> str:
        return f"{self.project.slug.upper()}-{self.short_id}"

    @property
    def event_metadata(self) -> dict:
        return json.loads(self.metadata_json or "{}")


class Release(db.Model):
    """A release (``release`` of an event) a project has sent, in the order first seen: a later id is newer."""

    __table_args__ = (UniqueConstraint("project_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(200))
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)


class Event(db.Model):
    __table_args__ = (
        UniqueConstraint("project_id", "event_id"),
        Index("ix_event_project_received", "project_id", "received"),
        # An issue's events newest first, and its events per day (the issue page's chart).
        Index("ix_event_group_received", "group_id", "received"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(32))
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    group_id: Mapped[int] = mapped_column(ForeignKey("sentry_group.id", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(String(10), default="error")
    title: Mapped[str] = mapped_column(String(255))
    received: Mapped[datetime] = mapped_column(default=utcnow)
    data_json: Mapped[str] = mapped_column(Text)

    group: Mapped[Group] = relationship()

    @property
    def data(self) -> dict:
        return json.loads(self.data_json)


class Comment(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("sentry_group.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    date_added: Mapped[datetime] = mapped_column(default=utcnow)
    date_updated: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    user: Mapped[User | None] = relationship(lazy="joined")


class GroupEnvironment(db.Model):
    """An environment (``production``, ``staging`` …) that an issue has had events in; the issues list filters by it."""

    __tablename__ = "group_environment"
    __table_args__ = (
        UniqueConstraint("group_id", "environment"),
        # The environments a project has seen (the filter's choices).
        Index("ix_group_environment_project_environment", "project_id", "environment"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    group_id: Mapped[int] = mapped_column(ForeignKey("sentry_group.id", ondelete="CASCADE"))
    environment: Mapped[str] = mapped_column(String(64))
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)


# What an activity entry records, and what its ``data`` holds.
ACTIVITY_KINDS = (
    "first_seen",  # {"event_id"}: the issue's first event
    "regression",  # {"event_id"}: a new event reopened a resolved issue
    "set_resolved", "set_ignored", "set_unresolved",  # a person changed the status; {} or Sentry's statusDetails
    "escalating",  # {"event_id"}: a new event brought an ignored issue back (its condition was met)
    "assigned",  # {"assignee_id", "assignee"}: assigned to a member (assignee: their name or email)
    "unassigned",  # {}
    "comment",  # {}: the text is the comment's own (so an edit shows), and the entry goes with it
)


class Activity(db.Model):
    """One entry of an issue's timeline: what happened, who did it (None: Hookline itself), when."""

    __table_args__ = (Index("ix_activity_group_date", "group_id", "date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("sentry_group.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), default=None)
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("comment.id", ondelete="CASCADE"), index=True,
                                                   default=None)
    data_json: Mapped[str] = mapped_column(Text, default="{}")
    date: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User | None] = relationship(lazy="joined")
    comment: Mapped[Comment | None] = relationship(lazy="joined")

    @property
    def data(self) -> dict:
        return json.loads(self.data_json or "{}")
