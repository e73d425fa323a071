"""A person logs in, registers an app, sends a test alert and sees it arrive in the request log."""

import time

from playwright.sync_api import Page, expect
from rq import Queue

from tests.conftest import PASSWORD
from tests.receiver import Receiver
from webapp.core import keys


def wait_for_queued_job(app, timeout=10.0):
    queue = Queue(keys.WEBHOOK_QUEUE, connection=app.extensions["redis"])
    deadline = time.monotonic() + timeout
    while queue.count == 0:
        assert time.monotonic() < deadline, "the page did not queue a test alert"
        time.sleep(0.05)


def test_register_app_send_test_alert_and_see_the_log(page: Page, app, live_server, make_user, httpserver, run_worker):
    make_user("owner@example.com", "acme", "owner")
    receiver = Receiver(httpserver)
    receiver.respond(200, '{"received": "yes"}')

    page.goto(f"{live_server}/")
    page.get_by_label("Email").fill("owner@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Acme · Internal apps")).to_be_visible()

    page.get_by_role("link", name="Register app").click()
    page.get_by_label("Name").fill("Browser receiver")
    page.get_by_label("Webhook URL").fill(receiver.url())
    page.get_by_label("issue").check()
    page.get_by_role("button", name="Register app").click()
    expect(page.get_by_role("heading", name="Browser receiver")).to_be_visible()
    expect(page.get_by_text("No requests yet")).to_be_visible()

    page.get_by_role("button", name="Reveal secret").click()
    secret = page.get_by_test_id("client-secret").inner_text()
    assert len(secret) == 64
    receiver.secret = secret
    expect(page.get_by_test_id("whsec")).to_contain_text("whsec_")

    page.get_by_role("button", name="Send test alert").click()
    expect(page.get_by_text("waiting for the worker")).to_be_visible()
    wait_for_queued_job(app)
    run_worker()

    # The result replaces the pending note, and the row appears in the log, both without a reload.
    expect(page.locator("#test-result")).to_contain_text("HTTP 200", timeout=10_000)
    expect(page.locator("#test-result")).to_contain_text('{"received": "yes"}')
    row = page.locator("tr.log-row").first
    expect(row).to_contain_text("event_alert.triggered", timeout=10_000)
    expect(row).to_contain_text("200")
    expect(page.get_by_text("No requests yet")).to_be_hidden()
    assert receiver.received[0].sentry_signature_ok and receiver.received[0].standard_webhooks_ok

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_label("Email")).to_be_visible()
