"""A small world for the alert-source tests: org acme, project web, apps on the receiver, the real sentry-sdk."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
import sentry_sdk
from sqlalchemy import select

from webapp.apps.internal_apps import register_internal_app
from webapp.apps.projects import create_project
from webapp.core.extensions import db
from webapp.models import Event, Group, Organization


@dataclass
class World:
    app: object
    project_id: int
    dsn: str
    subscribed_id: int  # app "Everything": issue, error, comment at /all
    bare_id: int  # app "Alerts only": no resources, at /alerts

    def groups(self) -> list[Group]:
        with self.app.app_context():
            groups = list(db.session.scalars(select(Group).order_by(Group.id)))
            db.session.expunge_all()
            return groups

    def event_count(self) -> int:
        with self.app.app_context():
            return len(list(db.session.scalars(select(Event.id))))


def make_world(app, receiver, live_server) -> World:
    with app.app_context():
        organization = db.session.scalar(select(Organization).where(Organization.slug == "acme"))
        project = create_project(organization, "Web")
        everything = register_internal_app(organization, "Everything", receiver.url("/all"), ["issue", "error", "comment"])
        bare = register_internal_app(organization, "Alerts only", receiver.url("/alerts"), [])
        receiver.secrets.update({"/all": everything.client_secret, "/alerts": bare.client_secret})
        receiver.respond(200, path="/all")
        receiver.respond(200, path="/alerts")
        return World(app, project.id, project.dsn(live_server), everything.id, bare.id)


@pytest.fixture
def world(app, owner, receiver, live_server):
    return make_world(app, receiver, live_server)


@pytest.fixture
def sdk(world):
    """The official sentry-sdk, initialised with the project's DSN; flushed and closed after the test."""
    sentry_sdk.init(dsn=world.dsn, default_integrations=False, auto_enabling_integrations=False,
                    traces_sample_rate=None, release="web@1.2.3", environment="test")
    yield sentry_sdk
    sentry_sdk.flush()
    sentry_sdk.get_client().close()
    sentry_sdk.init()  # back to a client that sends nothing


def raise_and_capture(message: str = "card declined", error: type = ValueError) -> str:
    """Raise in an in-app function and capture it like an application would; return the event id."""
    try:
        charge_card(message, error)
    except Exception:
        event_id = sentry_sdk.capture_exception()
    sentry_sdk.flush()
    return event_id


def charge_card(message: str, error: type):
    raise error(message)


def wait_unless_a_minute_has_time_left(seconds: float = 10) -> None:
    """Sleep into the next minute if this one ends within ``seconds`` (for tests of per-minute quotas)."""
    left = 60 - time.time() % 60
    if left < seconds:
        time.sleep(left + 0.1)
