"""Whether the apps a batch keeps loaded are still current: one light query a process shares, not a reload per batch.

A batch keeps the app it loaded for its next deliveries and must see a change (disabled, a new URL, a rotated
secret) within about REFRESH_SECONDS. Reloading every REFRESH_SECONDS in each batch cost a query, its ORM
rows and a fresh session per batch per second: at 256 slots (64 apps, four batches each) about half the SQL
statements of a delivery, and 30 % of the deliveries a process made to a receiver answering in 100 ms.

Here each app's row carries its version (``date_updated``, which every ORM change and every ``update()`` of
the row sets) and the two joined rows a delivery reads (its organisation's slug, its installation's uuid).
One query reads those of every app the process's batches ask about, at most every REFRESH_SECONDS / 2; a
batch whose kept app still matches is current as of that read, and one whose app differs (or is gone) reloads
as before. Anything else a batch keeps (an alert's event and rule) has no such version: that batch reloads.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref

from sqlalchemy import inspect, select
from sqlalchemy.exc import SQLAlchemyError

from ..models import Organization, SentryApp, SentryAppInstallation

logger = logging.getLogger(__name__)

# An app no batch has asked about for this long is no longer read.
FORGET_SECONDS = 60.0


def fingerprint(app: SentryApp) -> tuple | None:
    """What the version query reads of ``app``, from the loaded objects themselves (None if one is not fully
    loaded: reading it would take SQL)."""
    state = inspect(app)
    if not state.persistent or state.expired or state.unloaded & {"date_updated", "organization", "installation"}:
        return None
    installation = app.installation
    for related, field in ((app.organization, "slug"), (installation, "uuid")):
        if related is not None and (inspect(related).expired or field in inspect(related).unloaded):
            return None
    return (app.date_updated, app.organization.slug, installation.uuid if installation is not None else None)


class AppVersions:
    """The versions of the apps this process's batches keep, read together (see the module docstring)."""

    def __init__(self, engine, max_age: float):
        self.engine = weakref.proxy(engine)  # held by its engine's entry in _versions: no cycle keeping the engine
        self.max_age = max_age
        self.lock = threading.Lock()
        self.read_at = float("-inf")  # time.monotonic() when the last read began
        self.versions: dict[int, tuple] = {}  # app id -> fingerprint, as of read_at (absent: deleted)
        self.asked: dict[int, float] = {}  # app id -> when a batch last asked about it
        self.asked_when_read: set[int] = set()  # the apps the last read covered
        self.failed_at = float("-inf")  # when a read last failed (the database not answering)

    def current_as_of(self, kept: list) -> float | None:
        """Return a time (``time.monotonic()``) as of which every object in ``kept`` is known current, or None when
        one has changed, is gone or has no version: the caller reloads."""
        kept_apps = [instance for instance in kept if isinstance(instance, SentryApp)]
        apps = {app.id: fingerprint(app) for app in kept_apps}
        if not apps or None in apps.values():
            return None
        # An organisation or installation counts only as a kept app's own (which its version row covers).
        covered = {id(app) for app in kept_apps}
        covered |= {id(related) for app in kept_apps for related in (app.organization, app.installation)}
        if any(id(instance) not in covered for instance in kept):
            return None
        with self.lock:
            now = time.monotonic()
            if now - self.failed_at < self.max_age:
                return None  # the database did not answer just now: reload (and meet it there) without a second wait
            for app_id in apps:
                self.asked[app_id] = now
            if now - self.read_at >= self.max_age or not apps.keys() <= self.asked_when_read:
                try:
                    self._read(now)
                except SQLAlchemyError as exc:  # the reload meets the fault itself, on the delivery's error path
                    logger.warning("delivery.app_versions_unread reason=%s", exc.__class__.__name__)
                    self.failed_at = time.monotonic()
                    return None
            if any(self.versions.get(app_id) != version for app_id, version in apps.items()):
                return None
            return self.read_at

    def _read(self, now: float) -> None:
        self.asked = {app_id: at for app_id, at in self.asked.items() if now - at < FORGET_SECONDS}
        ids = list(self.asked)
        query = (select(SentryApp.id, SentryApp.date_updated, Organization.slug, SentryAppInstallation.uuid)
                 .join(Organization, Organization.id == SentryApp.organization_id)
                 .outerjoin(SentryAppInstallation, SentryAppInstallation.sentry_app_id == SentryApp.id)
                 .where(SentryApp.id.in_(ids)))
        with self.engine.connect() as connection:  # a transaction (and snapshot) of its own, ended at once
            rows = connection.execute(query).all()
        self.versions = {row[0]: tuple(row[1:]) for row in rows}
        self.asked_when_read = set(ids)
        self.read_at = now


_versions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # engine -> (process id, AppVersions)
_versions_lock = threading.Lock()


def app_versions(engine, max_age: float) -> AppVersions:
    """Return this process's ``AppVersions`` for the database behind ``engine`` (a forked child makes its own)."""
    kept = _versions.get(engine)
    if kept is None or kept[0] != os.getpid():
        with _versions_lock:
            kept = _versions.get(engine)
            if kept is None or kept[0] != os.getpid():
                kept = _versions[engine] = (os.getpid(), AppVersions(engine, max_age))
    return kept[1]
