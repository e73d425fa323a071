"""A batch's kept app is checked against one version read the process shares: unchanged, no reload; any change a
delivery would see (disabled, new URL, rotated secret, the organisation's slug, deleted), a reload."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import delete, event, select, update

from tests.lifecycle import pager, send  # noqa: F401 - pager is a fixture
from webapp.apps.internal_apps import disable_app, rotate_secret
from webapp.core import keys
from webapp.core.extensions import db
from webapp.dispatch.app_versions import AppVersions
from webapp.dispatch.queues import make_worker
from webapp.models import Organization, SentryApp


def kept_and_versions(app, pager):
    """The app as a batch keeps it (loaded with its organisation and installation), and fresh versions."""
    sentry_app = db.session.get(SentryApp, pager)
    kept = [sentry_app, sentry_app.organization, sentry_app.installation]
    db.session.commit()  # as a delivery leaves its session: the transaction ended, the objects kept (not expired)
    return kept, AppVersions(db.engine, max_age=0.0)


def other_session(app, change) -> None:
    """Make ``change`` (given a session) in a session of its own, as the dashboard or another worker would."""
    with app.app_context():  # an app context of its own: a session of its own
        change(db.session)
        db.session.commit()


@pytest.fixture
def keep_loaded(app):
    with app.app_context():
        db.session().expire_on_commit = False  # as a delivery ends its read-only transaction
        yield


def test_an_unchanged_app_is_current_as_of_the_read(app, pager, keep_loaded):
    kept, versions = kept_and_versions(app, pager)
    before = time.monotonic()
    assert versions.current_as_of(kept) >= before
    assert versions.current_as_of(kept) >= before  # and again: still the same


@pytest.mark.parametrize("change", [
    "disabled", "new url", "rotated secret", "organisation renamed", "deleted",
])
def test_any_change_a_delivery_would_see_makes_the_batch_reload(app, pager, keep_loaded, change):
    kept, versions = kept_and_versions(app, pager)
    assert versions.current_as_of(kept) is not None
    if change == "disabled":  # one UPDATE ... WHERE status = 'enabled', not an ORM change
        other_session(app, lambda s: disable_app(s.get(SentryApp, pager), actor_id=None, reason="test"))
    elif change == "new url":
        other_session(app, lambda s: s.execute(update(SentryApp).where(SentryApp.id == pager)
                                               .values(webhook_url="https://elsewhere.example/hook")))
    elif change == "rotated secret":
        other_session(app, lambda s: rotate_secret(s.get(SentryApp, pager), actor_id=None))
    elif change == "organisation renamed":
        other_session(app, lambda s: s.execute(update(Organization).where(Organization.slug == "acme")
                                               .values(slug="acme-renamed")))
    else:
        other_session(app, lambda s: s.execute(delete(SentryApp).where(SentryApp.id == pager)))
    assert versions.current_as_of(kept) is None


def test_objects_without_a_version_make_the_batch_reload(app, pager, keep_loaded):
    kept, versions = kept_and_versions(app, pager)
    rule = object()  # an alert's rule or event: nothing says whether it changed
    assert versions.current_as_of(kept + [rule]) is None
    assert versions.current_as_of([]) is None


def test_an_organisation_counts_only_as_a_kept_apps_own(app, pager, keep_loaded):
    from webapp.accounts.people import get_or_create_organization

    other = get_or_create_organization("elsewhere")  # loaded by some delivery, but no kept app's organisation
    db.session.commit()
    kept, versions = kept_and_versions(app, pager)
    assert versions.current_as_of(kept) is not None
    assert versions.current_as_of(kept + [other]) is None


def test_a_database_that_does_not_answer_is_asked_once_then_left_alone_for_a_while(app, pager, keep_loaded,
                                                                                      monkeypatch):
    from sqlalchemy.exc import OperationalError

    kept, _ = kept_and_versions(app, pager)
    versions = AppVersions(db.engine, max_age=60.0)
    reads = []

    def down(now):
        reads.append(now)
        raise OperationalError("SELECT", {}, Exception("could not connect"))

    monkeypatch.setattr(versions, "_read", down)
    assert versions.current_as_of(kept) is None  # the batch reloads and meets the fault in its own delivery
    assert versions.current_as_of(kept) is None
    assert len(reads) == 1  # not a second wait for the same fault on every batch's check


def test_a_batch_starts_no_delivery_too_close_to_its_jobs_time_limit():
    from webapp.dispatch.batches import BATCH_MARGIN, BATCH_SECONDS, batch_seconds

    assert batch_seconds(11, 1.0) == BATCH_SECONDS  # WEBHOOK_TIMEOUT 1: limit 11 s, 7 s + 1 s leaves 3
    assert batch_seconds(11, 1.9) == 11 - 1.9 - BATCH_MARGIN  # int(1.9) + 10 = 11: less room, a shorter batch
    assert batch_seconds(None, 1.0) == BATCH_SECONDS
    assert batch_seconds(2, 5.0) == 0.0  # no room at all: the job's own delivery only


def test_the_versions_are_read_at_most_once_per_interval_for_every_app_asked_about(app, pager, keep_loaded):
    kept, _ = kept_and_versions(app, pager)
    versions = AppVersions(db.engine, max_age=60.0)
    reads = []
    event.listen(db.engine, "before_cursor_execute", lambda *args: reads.append(args[2]))
    for _ in range(50):
        assert versions.current_as_of(kept) is not None
    assert len([sql for sql in reads if "date_updated" in sql]) == 1


def test_a_batch_delivers_its_backlog_with_one_load_of_its_app(app, pager, receiver):
    """A batch longer than REFRESH_SECONDS checks its app against the version read, and reloads it only on a change."""
    from werkzeug import Response

    app.config["WEBHOOK_APP_CONCURRENCY"] = 1
    ids = send(app, pager, 16)
    statements: list[str] = []

    def handler(request):
        receiver.received.append(receiver._check(request))
        time.sleep(0.1)  # 16 deliveries: about 1.6 s, past the refresh period
        return Response('{"ok": true}', content_type="application/json")

    receiver.server.expect_request("/hook", method="POST").respond_with_handler(handler)
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    make_worker(app, [keys.WEBHOOK_QUEUE]).work(burst=True)

    assert sorted(r.headers["Webhook-Id"] for r in receiver.received) == sorted(ids)
    loads = [sql for sql in statements if "sentry_app.webhook_url" in sql]
    version_reads = [sql for sql in statements if "sentry_app.date_updated" in sql and "webhook_url" not in sql]
    assert len(loads) == 1  # the leader's own delivery loaded it; its batch kept it
    assert version_reads  # and checked it, past REFRESH_SECONDS
    with app.app_context():
        assert db.session.scalar(select(SentryApp.status).where(SentryApp.id == pager)) == "enabled"
