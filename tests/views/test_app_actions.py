"""Disabling an app by hand and deleting it from the dashboard: who may, what is asked, what is kept."""

import pytest
from sqlalchemy import select

from tests.conftest import Session
from tests.lifecycle import audit_events, load_app, log_entries, send
from webapp.core import keys
from webapp.core.extensions import db
from webapp.models import AuditLogEntry, SentryApp


def logged_in(app, email):
    session = Session(app.test_client())
    session.login(email)
    return session


@pytest.fixture
def owner_session(app, pager):
    return logged_in(app, "owner@example.com")


@pytest.fixture
def member(app, pager):
    return logged_in(app, "member@example.com")


def last_audit(app) -> AuditLogEntry:
    with app.app_context():
        entry = db.session.scalar(select(AuditLogEntry).order_by(AuditLogEntry.id.desc()))
        db.session.expunge(entry)
        return entry


def test_manager_disables_with_a_reason_and_the_banner_names_them(app, pager):
    manager = logged_in(app, "manager@example.com")
    response = manager.post("/orgs/acme/apps/pager/disable", {"reason": "  Receiver moving to a new host  ", "confirm": "1"})
    assert response.status_code == 303
    sentry_app = load_app(app, pager)
    assert (sentry_app.status, sentry_app.disabled_reason) == ("disabled", "Receiver moving to a new host")
    entry = last_audit(app)
    assert (entry.event, entry.actor_label, entry.target_label) == ("app.disable", "manager@example.com", "Pager")
    assert entry.data == {"reason": "Receiver moving to a new host", "manual": True}
    page = manager.get("/orgs/acme/apps/pager").get_data(as_text=True)
    assert "<strong>Disabled by manager@example.com:</strong> Receiver moving to a new host" in page
    assert "because its webhook is broken" not in page and "Disable app…" not in page


def test_a_disabled_app_keeps_what_it_misses_and_re_enabling_forgets_who_disabled_it(app, owner_session, pager, receiver,
                                                                                      run_worker):
    owner_session.post("/orgs/acme/apps/pager/disable", {"reason": "maintenance", "confirm": "1"})
    send(app, pager, 2)
    run_worker()
    assert receiver.received == [] and log_entries(app, pager) == []
    assert "2 deliveries missed while disabled" in owner_session.get("/orgs/acme/apps/pager").get_data(as_text=True)
    owner_session.post("/orgs/acme/apps/pager/enable", {"replay": "1"})
    sentry_app = load_app(app, pager)
    assert (sentry_app.status, sentry_app.disabled_by_id, sentry_app.disabled_reason) == ("enabled", None, None)


def test_disable_asks_first_and_needs_a_reason(app, owner_session, pager):
    asked = owner_session.post("/orgs/acme/apps/pager/disable", {"reason": "maintenance"})  # no JavaScript dialog
    assert asked.status_code == 200 and load_app(app, pager).status == "enabled"
    page = asked.get_data(as_text=True)
    assert "Disable Pager?" in page and 'name="confirm" value="1"' in page and 'value="maintenance"' in page
    empty = owner_session.post("/orgs/acme/apps/pager/disable", {"reason": "   ", "confirm": "1"})
    assert empty.status_code == 400 and "Say why the app is disabled" in empty.get_data(as_text=True)
    too_long = owner_session.post("/orgs/acme/apps/pager/disable", {"reason": "x" * 501, "confirm": "1"})
    assert too_long.status_code == 400
    assert load_app(app, pager).status == "enabled" and "app.disable" not in audit_events(app)


def test_disabling_a_disabled_app_changes_nothing(app, owner_session, pager):
    owner_session.post("/orgs/acme/apps/pager/disable", {"reason": "first", "confirm": "1"})
    owner_session.post("/orgs/acme/apps/pager/disable", {"reason": "second", "confirm": "1"})
    assert load_app(app, pager).disabled_reason == "first"
    assert audit_events(app).count("app.disable") == 1


def test_delete_needs_the_apps_name_typed(app, owner_session, pager, receiver, run_worker):
    receiver.answer(200)
    send(app, pager)
    run_worker()
    page = owner_session.get("/orgs/acme/apps/pager/delete").get_data(as_text=True)
    assert "Delete Pager?" in page and "Type <strong>Pager</strong> to confirm" in page
    wrong = owner_session.post("/orgs/acme/apps/pager/delete", {"name": "pager"})
    assert wrong.status_code == 400 and "Type Pager exactly to delete it." in wrong.get_data(as_text=True)
    assert load_app(app, pager).status == "enabled"

    response = owner_session.post("/orgs/acme/apps/pager/delete", {"name": "Pager"})
    assert response.status_code == 303 and response.headers["Location"] == "/orgs/acme/apps"
    with app.app_context():
        assert db.session.get(SentryApp, pager) is None
    entry = last_audit(app)
    assert (entry.event, entry.actor_label, entry.target_label) == ("app.remove", "owner@example.com", "Pager")
    redis = app.extensions["redis"]
    assert log_entries(app, pager) == [] and redis.hget(keys.LAST_DELIVERY, str(pager)) is None
    assert not redis.keys(f"hookline:health-history:{pager}:*") and not redis.keys(f"hookline:integration-health:{pager}:*")
    assert "Deleted Pager" in owner_session.get("/orgs/acme/apps").get_data(as_text=True)


def test_members_get_403_and_other_organisations_404(app, member, pager, make_user):
    for path in ("/orgs/acme/apps/pager/disable", "/orgs/acme/apps/pager/delete"):
        assert member.get(path).status_code == 403
        assert member.post(path, {"reason": "x", "name": "Pager", "confirm": "1"}).status_code == 403
    page = member.get("/orgs/acme/apps/pager").get_data(as_text=True)
    assert "Disable app…" not in page and "Delete app…" not in page and "Rotate secret" not in page
    make_user("stranger@example.com", "other", "owner")
    stranger = logged_in(app, "stranger@example.com")
    for path in ("/orgs/acme/apps/pager/disable", "/orgs/acme/apps/pager/delete"):
        assert stranger.post(path, {"reason": "x", "name": "Pager", "confirm": "1"}).status_code == 404
    assert load_app(app, pager).status == "enabled"
    assert [event for event in audit_events(app) if not event.startswith("login.")] == ["app.create"]


def test_health_history_survives_a_disable(app, owner_session, pager, receiver, run_worker, clock):
    receiver.answer(200)
    send(app, pager, 2)
    run_worker()
    receiver.answer(410)  # gone: the app is disabled at once and broken detection starts afresh
    send(app, pager)
    run_worker()
    assert load_app(app, pager).status == "disabled"
    redis = app.extensions["redis"]
    assert not redis.exists(keys.integration_health(pager, 1, "2026-11-01"))  # the counters were cleared
    page = owner_session.get("/orgs/acme/apps/pager").get_data(as_text=True)
    assert "<title>Nov 1: 2 ok, 1 error, 0 no answer</title>" in page
    assert "No deliveries in the last 30 days" not in page
    listing = owner_session.get("/orgs/acme/apps").get_data(as_text=True)
    assert "Pager, last 7 days: 2 ok, 1 error, 0 no answer" in listing

    owner_session.post("/orgs/acme/apps/pager/enable", {"replay": "0"})
    receiver.answer(200)
    send(app, pager)
    run_worker()
    page = owner_session.get("/orgs/acme/apps/pager").get_data(as_text=True)
    assert "<title>Nov 1: 3 ok, 1 error, 0 no answer</title>" in page  # the history goes on after re-enabling


def test_an_app_without_deliveries_says_so(app, owner_session, pager):
    page = owner_session.get("/orgs/acme/apps/pager").get_data(as_text=True)
    assert "No deliveries in the last 30 days" in page and "<svg" not in page.split("Health, last 30 days")[1][:400]
    listing = owner_session.get("/orgs/acme/apps").get_data(as_text=True)
    assert '<span class="sparkline-empty">No deliveries<span class="visually-hidden"> in the last 7 days</span></span>' in listing
