"""Transient failures are retried on the jittered schedule (or as Retry-After asks); permanent ones are not."""

import pytest

from tests.conftest import scheduled_in
from tests.lifecycle import health_today, log_entries, send


@pytest.fixture
def schedule(app):
    app.config["WEBHOOK_RETRY_SCHEDULE"] = (5.0, 300.0)
    return app.config["WEBHOOK_RETRY_SCHEDULE"]


def test_5xx_is_counted_and_retried_on_the_schedule_with_the_same_webhook_id(
        app, pager, schedule, receiver, clock, run_worker, run_scheduled):
    receiver.answer(500, "upstream exploded")
    [message_id] = send(app, pager)
    run_worker()
    assert health_today(app, pager, clock.now().date())["error_count"] == 1
    [delay] = scheduled_in(app)
    assert 2.0 <= delay <= 6.1  # 5 s ± 20 % (RQ keeps whole seconds; a loaded machine reads later)
    assert run_scheduled() == 1
    run_worker()
    [delay] = scheduled_in(app)
    assert 235 <= delay <= 361  # 300 s ± 20 %
    run_scheduled()
    run_worker()
    assert scheduled_in(app) == []  # three attempts: the first and two retries

    assert [r.headers["Webhook-Id"] for r in receiver.received] == [message_id] * 3
    assert len({r.headers["Request-Id"] for r in receiver.received}) == 3
    assert all(r.sentry_signature_ok and r.standard_webhooks_ok for r in receiver.received)
    entries = log_entries(app, pager)
    assert [e["attempt"] for e in entries] == [3, 2, 1]
    assert [e.get("delivery_failed", False) for e in entries] == [True, False, False]
    assert health_today(app, pager, clock.now().date())["error_count"] == 3


def test_a_retry_that_succeeds_ends_the_delivery(app, pager, schedule, receiver, run_worker, run_scheduled):
    receiver.answer(503)
    send(app, pager)
    run_worker()
    receiver.answer(200)
    run_scheduled()
    run_worker()
    assert scheduled_in(app) == []
    assert [e["response_code"] for e in log_entries(app, pager)] == [200, 503]


def test_429_is_not_counted_and_waits_as_long_as_retry_after_says(app, pager, schedule, receiver, clock, run_worker):
    receiver.answer(429, headers={"Retry-After": "120"})
    send(app, pager)
    run_worker()
    assert health_today(app, pager, clock.now().date()) == {
        "success_count": 0, "error_count": 0, "timeout_count": 0, "fatal_count": 0}
    [delay] = scheduled_in(app)
    assert 115 <= delay <= 121  # 120 s (RQ keeps whole seconds; a loaded machine reads later)


def test_retry_after_is_capped(app, pager, schedule, receiver, run_worker):
    app.config["WEBHOOK_RETRY_AFTER_CAP"] = 60.0
    receiver.answer(503, headers={"Retry-After": "86400"})
    send(app, pager)
    run_worker()
    [delay] = scheduled_in(app)
    assert 55 <= delay <= 61


@pytest.mark.parametrize("code", [404, 301, 410])
def test_permanent_failures_are_not_retried_and_are_marked_failed(app, pager, schedule, receiver, run_worker, code):
    receiver.answer(code, headers={"Location": "/elsewhere"} if code == 301 else None)
    send(app, pager)
    run_worker()
    assert scheduled_in(app) == []
    [entry] = log_entries(app, pager)
    assert entry["delivery_failed"] is True and entry["response_code"] == code


def test_timeouts_are_counted_and_retried(app, pager, schedule, clock, run_worker):
    from webapp.core.extensions import db
    from webapp.models import SentryApp

    with app.app_context():
        db.session.get(SentryApp, pager).webhook_url = "http://127.0.0.1:9/hook"  # nothing listens there
        db.session.commit()
    send(app, pager)
    run_worker()
    assert health_today(app, pager, clock.now().date())["timeout_count"] == 1
    assert len(scheduled_in(app)) == 1
    assert log_entries(app, pager)[0]["response_code"] == 0


def test_test_alerts_are_not_counted_or_retried(app, pager, schedule, receiver, clock, run_worker):
    from tests.conftest import Session

    receiver.answer(500)
    owner = Session(app.test_client())
    owner.login()
    owner.post("/orgs/acme/apps/pager/test-alert")
    run_worker()
    assert len(receiver.received) == 1 and scheduled_in(app) == []
    assert sum(health_today(app, pager, clock.now().date()).values()) == 0


def test_jitter_spreads_retries_within_twenty_percent(app):
    from webapp.dispatch.delivery import retry_delay

    with app.app_context():
        app.config["WEBHOOK_RETRY_SCHEDULE"] = (100.0,)
        delays = [retry_delay(1, None) for _ in range(200)]
    assert all(80 <= delay <= 120 for delay in delays)
    assert max(delays) - min(delays) > 20  # spread out, not one fixed value
