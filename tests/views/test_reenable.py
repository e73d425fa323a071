"""Fixing a disabled app from its page: the banner, Re-enable with replay, secret rotation, the audit log."""


import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.conftest import Session
from tests.lifecycle import audit_events, health_today, load_app, log_entries, send
from webapp.dispatch.signing import standard_webhooks_secret


@pytest.fixture
def owner_session(app, pager):
    session = Session(app.test_client())
    session.login("owner@example.com")
    return session


@pytest.fixture
def disabled(app, pager, receiver, run_worker):
    """Pager disabled by a 410, then three deliveries it missed; returns the webhook ids of all four kept."""
    receiver.answer(410)
    disabling = send(app, pager)
    run_worker()
    assert load_app(app, pager).status == "disabled"
    receiver.received.clear()
    missed = send(app, pager, 3)
    run_worker()
    assert receiver.received == []  # a disabled app gets nothing
    return disabling + missed  # the delivery that disabled the app is kept to replay too


def test_banner_says_since_when_and_why_and_counts_the_missed(owner_session, disabled):
    page = owner_session.get("/orgs/acme/apps/pager?referrer=disabled-app").get_data(as_text=True)
    assert 'data-testid="disabled-banner"' in page
    assert "Pager is disabled" in page and "410 Gone" in page and "Disabled since" in page
    assert "4 deliveries missed while disabled" in page
    assert "Re-enable" in page and "Replay the 4 missed deliveries" in page
    listing = owner_session.get("/orgs/acme/apps").get_data(as_text=True)
    assert ">disabled<" in listing


def test_reenable_with_replay_sends_each_missed_delivery_fresh(app, owner_session, disabled, pager, receiver, run_worker, clock):
    receiver.answer(200)
    response = owner_session.post("/orgs/acme/apps/pager/enable", {"replay": "1"})
    assert response.status_code == 302
    assert "4 missed deliveries are being sent" in owner_session.get("/orgs/acme/apps/pager").get_data(as_text=True)
    sentry_app = load_app(app, pager)
    assert (sentry_app.status, sentry_app.disabled_reason, sentry_app.resource_list) == ("enabled", None, ["issue"])
    run_worker()
    assert [r.headers["Webhook-Id"] for r in receiver.received] == disabled  # oldest first, same message ids, once
    assert all(r.sentry_signature_ok and r.standard_webhooks_ok for r in receiver.received)
    replays = [e for e in log_entries(app, pager) if e.get("replay")]
    assert len(replays) == 4 and all(e["response_code"] == 200 for e in replays)
    assert audit_events(app)[-1] == "app.enable"
    assert health_today(app, pager, clock.now().date())["success_count"] == 4  # fresh counters, then the replays
    assert "missed while disabled" not in owner_session.get("/orgs/acme/apps/pager").get_data(as_text=True)


def test_reenable_without_replay_drops_the_missed(app, owner_session, disabled, pager, receiver, run_worker):
    receiver.answer(200)
    owner_session.post("/orgs/acme/apps/pager/enable")
    run_worker()
    assert receiver.received == []
    send(app, pager)
    run_worker()
    assert len(receiver.received) == 1  # new deliveries flow again


def test_a_test_alert_goes_through_while_disabled(app, owner_session, disabled, receiver, run_worker):
    receiver.answer(200)
    owner_session.post("/orgs/acme/apps/pager/test-alert")
    run_worker()
    assert len(receiver.received) == 1


def test_members_cannot_reenable_or_rotate(app, disabled, pager):
    member = Session(app.test_client())
    member.login("member@example.com")
    page = member.get("/orgs/acme/apps/pager").get_data(as_text=True)
    assert "Pager is disabled" in page and ">Re-enable<" not in page
    assert member.post("/orgs/acme/apps/pager/enable", {"replay": "1"}).status_code == 403
    assert member.post("/orgs/acme/apps/pager/rotate-secret", {"confirm": "1"}).status_code == 403
    assert load_app(app, pager).status == "disabled"


def test_rotated_secret_signs_beside_the_old_one_for_24_hours(app, owner_session, pager, receiver, run_worker, clock):
    old = receiver.secret
    asked = owner_session.post("/orgs/acme/apps/pager/rotate-secret").get_data(as_text=True)
    assert "Rotate the secret of Pager?" in asked and load_app(app, pager).client_secret == old
    page = owner_session.post("/orgs/acme/apps/pager/rotate-secret", {"confirm": "1"}).get_data(as_text=True)
    new = load_app(app, pager).client_secret
    assert new != old and new in page and "old one keeps signing beside it for 24 hours" in page
    receiver.secret = new
    receiver.answer(200)
    send(app, pager)
    run_worker()
    [first] = receiver.received
    assert first.sentry_signature_ok  # Sentry-Hook-Signature carries the new secret
    headers = {k.lower(): v for k, v in first.headers.items()}
    Webhook(standard_webhooks_secret(old)).verify(first.body, headers)  # a receiver not yet updated still verifies
    Webhook(standard_webhooks_secret(new)).verify(first.body, headers)

    clock.advance(hours=25)
    send(app, pager)
    run_worker()
    later = {k.lower(): v for k, v in receiver.received[1].headers.items()}
    with pytest.raises(WebhookVerificationError):
        # The old secret no longer signs (verify with a timestamp check relative to the message itself).
        Webhook(standard_webhooks_secret(old)).verify(receiver.received[1].body, later)
    assert len(later["webhook-signature"].split()) == 1
    assert audit_events(app)[-1] == "app.rotate-secret"


def test_audit_log_lists_changes_newest_first(app, owner_session, disabled, receiver):
    receiver.answer(200)
    owner_session.post("/orgs/acme/apps/pager/rotate-secret", {"confirm": "1"})
    owner_session.post("/orgs/acme/apps/pager/enable", {"replay": "1"})
    page = owner_session.get("/orgs/acme/audit-log").get_data(as_text=True)
    page = page[page.index("<tbody>"):]  # the table, not the event filter's options
    order = [page.index(label) for label in ("App re-enabled", "App secret rotated", "App disabled", "App registered")]
    assert order == sorted(order)
    assert "410 Gone" in page and "owner@example.com" in page and "Hookline" in page
    member = Session(app.test_client())
    member.login("member@example.com")
    assert member.get("/orgs/acme/audit-log").status_code == 403


def test_health_chart_and_sparkline(app, owner_session, pager, receiver, run_worker, clock):
    receiver.answer(200)
    send(app, pager, 2)
    run_worker()
    receiver.answer(500)
    send(app, pager)
    run_worker()
    page = owner_session.get("/orgs/acme/apps/pager").get_data(as_text=True)
    assert "<title>Nov 1: 2 ok, 1 error, 0 no answer</title>" in page  # today's bar, on hover
    assert page.count("<g><title>") == 30 and page.count('class="bar-ok"') == 1
    assert "<th scope=\"row\">2026-11-01</th><td>2</td><td>1</td><td>0</td>" in page  # the screen readers' table
    assert '<span class="tick tick-last"><span>Nov 1</span></span>' in page  # the axis
    listing = owner_session.get("/orgs/acme/apps").get_data(as_text=True)
    assert "<title>Nov 1: 2 ok, 1 error, 0 no answer</title>" in listing and "sparkline" in listing
    assert "Pager, last 7 days: 2 ok, 1 error, 0 no answer" in listing
    assert '<time datetime="2026-11-01T12:00:00Z">2026-11-01 12:00 UTC</time> · <span class="failure-line">500</span>' in listing  # last delivery


def test_a_failing_app_says_so_in_the_list_and_its_header_and_links_to_the_failures(app, owner_session, pager, receiver,
                                                                                   run_worker, clock):
    receiver.answer(500, "database is down")
    send(app, pager)
    run_worker()
    listing = owner_session.get("/orgs/acme/apps").get_data(as_text=True)
    badge = 'data-testid="failing-badge">failing since Nov 1 (UTC)</span>'
    assert badge in listing and ">enabled<" not in listing
    page = owner_session.get("/orgs/acme/apps/pager").get_data(as_text=True)
    assert badge in page and 'data-testid="failing-banner"' in page
    assert 'href="/orgs/acme/apps/pager?errors_only=1#request-log">See the failed requests</a>' in page
    receiver.answer(200)
    send(app, pager)
    run_worker()
    assert ">enabled<" in owner_session.get("/orgs/acme/apps").get_data(as_text=True)  # a success ends the streak


def test_one_missed_delivery_is_said_in_the_singular(app, owner_session, pager, receiver, run_worker):
    receiver.answer(410)
    send(app, pager)
    run_worker()
    page = owner_session.get("/orgs/acme/apps/pager").get_data(as_text=True)
    assert "1 delivery missed while disabled</strong> is kept" in page and "Replay the missed delivery" in page


def test_a_failing_streak_longer_than_the_sparkline_is_dated_from_its_first_day(app, owner_session, pager, receiver,
                                                                                run_worker, clock):
    app.config["BROKEN_RANGE_DAYS"] = 30  # so ten failing days do not disable the app
    receiver.answer(500, "database is down")
    for _ in range(10):  # Nov 1 to Nov 10, a failed delivery each day
        send(app, pager)
        run_worker()
        clock.advance(days=1)
    clock.advance(days=-1)
    listing = owner_session.get("/orgs/acme/apps").get_data(as_text=True)
    assert 'data-testid="failing-badge">failing since Nov 1 (UTC)</span>' in listing  # not "since Nov 4"
