"""A webhook that keeps failing: a warning on day 3, one disable on day 7, one email to owners and managers."""

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from rq import Queue

from tests.lifecycle import audit_events, health_today, load_app, log_entries, send
from webapp.apps.internal_apps import enable_app
from webapp.core import keys
from webapp.core.extensions import db
from webapp.dispatch.delivery import missed_delivery_count
from webapp.dispatch.health import IntegrationRequestBuffer
from webapp.models import SentryApp

ROOT = Path(__file__).resolve().parents[2]


def subject(message) -> str:
    """The subject as a mail client shows it (long headers arrive folded)."""
    return " ".join(message["Subject"].split())


def fail_one_day(app, pager, clock, run_worker):
    send(app, pager)
    run_worker()
    clock.advance(days=1)


def test_seven_failing_days_disable_the_app_once_with_one_email(app, pager, receiver, clock, run_worker, smtp):
    receiver.answer(500, "still broken")
    first_day = clock.now().date()
    for _ in range(6):
        fail_one_day(app, pager, clock, run_worker)
    assert load_app(app, pager).status == "enabled"
    warnings = [m for m in smtp.messages if "will be disabled" in subject(m)]
    assert len(warnings) == 1  # sent on day 3, not again on days 4-6

    send(app, pager)
    run_worker()
    sentry_app = load_app(app, pager)
    assert sentry_app.status == "disabled" and sentry_app.disabled_at is not None
    assert sentry_app.disabled_reason.startswith(
        f"Every one of the last 7 days ({first_day} to {first_day + timedelta(days=6)}, UTC) had failed requests")
    assert "7 errors and 0 with no answer" in sentry_app.disabled_reason
    assert audit_events(app) == ["app.create", "app.disable"]
    assert sum(health_today(app, pager, clock.now().date()).values()) == 0  # cleared

    [mail] = [m for m in smtp.messages if subject(m).startswith("Action required")]
    assert subject(mail) == "Action required: Fix your Pager integration"
    assert sorted(smtp.envelopes[-1][1]) == ["manager@example.com", "owner@example.com"]  # not the member
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    for body in (text, html):
        assert receiver.url("/hook") in body
        assert "Every one of the last 7 days" in body
        assert "http://hookline.test/orgs/acme/apps/pager?referrer=disabled-app" in body

    send(app, pager, 3)
    run_worker()
    assert audit_events(app).count("app.disable") == 1
    assert len([m for m in smtp.messages if subject(m).startswith("Action required")]) == 1


def test_the_warning_names_the_disable_date(app, pager, receiver, clock, run_worker, smtp):
    receiver.answer(502)
    start = clock.now().date()
    for _ in range(3):
        fail_one_day(app, pager, clock, run_worker)
    [warning] = smtp.messages
    disable_on = start + timedelta(days=6)
    assert subject(warning) == f"Your Pager integration is failing and will be disabled on {disable_on:%d %B %Y}"
    assert f"It will be disabled on {disable_on.isoformat()}" in warning.get_body(("plain",)).get_content()
    assert "referrer=failing-app" in warning.get_body(("plain",)).get_content()


def test_a_success_on_day_seven_keeps_the_app_enabled(app, pager, receiver, clock, run_worker):
    receiver.answer(500)
    for _ in range(6):
        fail_one_day(app, pager, clock, run_worker)
    receiver.answer(200)
    send(app, pager)
    run_worker()
    receiver.answer(500)
    send(app, pager)
    run_worker()
    assert load_app(app, pager).status == "enabled"


def test_timeouts_over_the_daily_threshold_disable(app, pager, clock, run_worker, smtp):
    from webapp.core.extensions import db
    from webapp.models import SentryApp

    app.config["BROKEN_TIMEOUT_THRESHOLD"] = 3
    with app.app_context():
        db.session.get(SentryApp, pager).webhook_url = "http://127.0.0.1:9/hook"
        db.session.commit()
    send(app, pager, 2)
    run_worker()
    assert load_app(app, pager).status == "enabled"
    send(app, pager, 1)
    run_worker()
    sentry_app = load_app(app, pager)
    assert sentry_app.status == "disabled"
    assert sentry_app.disabled_reason.startswith("3 requests got no answer today")


def test_410_gone_disables_at_once(app, pager, receiver, run_worker, smtp):
    receiver.answer(200)
    send(app, pager, 5)
    run_worker()
    receiver.answer(410, "this endpoint was removed")
    send(app, pager)
    run_worker()
    sentry_app = load_app(app, pager)
    assert sentry_app.status == "disabled" and "410 Gone" in sentry_app.disabled_reason
    assert any(subject(m) == "Action required: Fix your Pager integration" for m in smtp.messages)


def test_two_workers_racing_disable_once_and_email_once(app, settings, pager, receiver, run_worker, smtp):
    """Two `python worker.py` processes deliver failing webhooks at once to an app on its 7th failing day."""
    receiver.answer(500)
    redis = app.extensions["redis"]
    buffer = IntegrationRequestBuffer(redis, pager, 1)
    today = date.today()  # the worker processes use the real clock
    pipe = redis.pipeline()
    for offset in range(1, 7):
        buffer.record("error", today - timedelta(days=offset), pipe)
    pipe.execute()
    send(app, pager, 30)

    env = {**os.environ, **{k: str(v) for k, v in settings.items() if k.isupper() and k != "TESTING"}}
    workers = [subprocess.Popen([sys.executable, str(ROOT / "worker.py"), "--burst"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for worker in workers:
        _, errors = worker.communicate(timeout=120)
        assert worker.returncode == 0, errors

    assert load_app(app, pager).status == "disabled"
    assert audit_events(app).count("app.disable") == 1
    run_worker()  # whatever mail the two workers left queued
    assert Queue(keys.MAIL_QUEUE, connection=redis).count == 0
    assert [subject(m) for m in smtp.messages] == ["Action required: Fix your Pager integration"]
    assert len(receiver.received) < 30  # the rest were kept for the disabled app, not sent


def reenable_with_replay(app, pager) -> int:
    with app.app_context():
        return enable_app(db.session.get(SentryApp, pager), None, replay=True)


def test_the_final_attempt_that_disabled_the_app_is_replayed_once_on_reenable(app, pager, receiver, clock, run_worker):
    receiver.answer(404)  # permanent: the attempt that disables the app is the message's last
    for _ in range(6):
        fail_one_day(app, pager, clock, run_worker)
    [disabling] = send(app, pager)
    run_worker()
    assert load_app(app, pager).status == "disabled"
    with app.app_context():
        assert missed_delivery_count(pager) == 1
    receiver.received.clear()
    receiver.answer(200)
    assert reenable_with_replay(app, pager) == 1
    run_worker()
    run_worker()
    assert [r.headers["Webhook-Id"] for r in receiver.received] == [disabling]
    assert log_entries(app, pager)[0].get("replay") is True
    with app.app_context():
        assert missed_delivery_count(pager) == 0


def test_a_disabling_attempt_with_retries_left_is_kept_once_by_its_retry(app, pager, receiver, clock, run_worker,
                                                                         run_scheduled):
    app.config["WEBHOOK_RETRY_SCHEDULE"] = (5.0,)
    receiver.answer(404)
    for _ in range(6):
        fail_one_day(app, pager, clock, run_worker)
    receiver.answer(500)  # retried: the retry finds the app disabled and keeps the message itself
    [disabling] = send(app, pager)
    run_worker()
    assert load_app(app, pager).status == "disabled"
    assert run_scheduled() == 1
    run_worker()
    with app.app_context():
        assert missed_delivery_count(pager) == 1  # kept once, not by the attempt and again by its retry
    receiver.received.clear()
    receiver.answer(200)
    assert reenable_with_replay(app, pager) == 1
    run_worker()
    assert [r.headers["Webhook-Id"] for r in receiver.received] == [disabling]
