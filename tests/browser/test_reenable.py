"""An app disabled by failures shows why; Re-enable brings it back and a test alert goes through."""

from playwright.sync_api import Page, expect

from tests.browser.test_walkthrough import wait_for_queued_job
from tests.conftest import PASSWORD
from tests.lifecycle import send


def test_disabled_app_banner_reenable_and_test_alert(page: Page, app, pager, live_server, receiver, run_worker):
    receiver.answer(410, "gone for good")
    send(app, pager)
    run_worker()
    send(app, pager, 2)  # missed while disabled
    run_worker()

    page.goto(f"{live_server}/orgs/acme/apps/pager?referrer=disabled-app")
    page.get_by_label("Email").fill("owner@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    banner = page.get_by_test_id("disabled-banner")
    expect(banner).to_contain_text("Pager is disabled")
    expect(banner).to_contain_text("410 Gone")
    expect(banner).to_contain_text("3 deliveries missed while disabled")  # the two, and the 410 that disabled it
    expect(page.locator("tr.log-row").first).to_contain_text("410")

    receiver.answer(200)  # the owner fixes the endpoint
    page.get_by_label("Replay the 3 missed deliveries").check()
    page.get_by_role("button", name="Re-enable").click()
    expect(page.get_by_text("Pager is enabled again; 3 missed deliveries are being sent.")).to_be_visible()
    expect(page.get_by_test_id("disabled-banner")).to_have_count(0)
    run_worker()

    page.get_by_role("button", name="Send test alert").click()
    wait_for_queued_job(app)
    run_worker()
    expect(page.locator("#test-result")).to_contain_text("HTTP 200", timeout=10_000)
    assert len(receiver.received) == 1 + 3 + 1  # the 410, three replays (the 410's message among them), the test alert
