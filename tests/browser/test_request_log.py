"""In a real browser: the log's messages at desktop width; open a logged request, copy its webhook-id, resend it."""

from playwright.sync_api import Page, expect

from tests.browser.dashboard_world import DESKTOP, LOW_CONTRAST, log_in, page_width, screenshot
from tests.browser.test_log_messages_phone import failing_and_delivered  # noqa: F401  (a fixture)
from tests.browser.test_walkthrough import wait_for_queued_job
from tests.conftest import PASSWORD
from tests.lifecycle import log_entries, send


def test_open_a_row_copy_its_webhook_id_and_resend(page: Page, context, app, pager, live_server, receiver, run_worker):
    receiver.answer(200, '{"stored": "yes"}')
    [message_id] = send(app, pager)
    run_worker()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)

    page.goto(f"{live_server}/orgs/acme/apps/pager")
    page.get_by_label("Email").fill("owner@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    request_id = page.locator("tr.log-row").first.get_attribute("data-request-id")
    row = page.locator(f"#request-{request_id}")  # by id: the resend's row lands on top later
    row.get_by_role("link", name="Details").click()
    panel = page.locator(f"#inspect-{request_id}")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text(message_id)
    expect(panel).to_contain_text("HTTP 200")
    expect(panel).to_contain_text('"stored": "yes"')
    assert panel.locator(":scope > td").get_attribute("colspan") == "7"  # spans the whole table

    copy = panel.get_by_role("button", name="Copy webhook-id", exact=True)
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == message_id

    panel.get_by_role("button", name="Resend").click()
    expect(panel.get_by_role("status")).to_contain_text("Resend queued")
    wait_for_queued_job(app)
    run_worker()
    assert [r.headers["Webhook-Id"] for r in receiver.received] == [message_id, message_id]
    assert receiver.received[1].body == receiver.received[0].body
    expect(page.locator("tr.log-row").first).to_contain_text("(resend)", timeout=10_000)  # the poller brought it

    row.get_by_role("link", name="Details").click()  # a second click closes the row
    expect(panel).to_be_hidden()
    expect(row.get_by_role("link", name="Details")).to_have_attribute("aria-expanded", "false")


def test_at_desktop_width_messages_read_as_messages(page: Page, app, pager, live_server, failing_and_delivered):
    failing, delivered, _ = failing_and_delivered
    page.set_viewport_size(DESKTOP)
    log_in(page, live_server)
    page.goto(f"{live_server}/orgs/acme/apps/pager")
    expect(page.locator("tbody.message")).to_have_count(2)
    expect(page.locator("tbody.message").first.locator(".webhook-id")).to_have_text(failing)  # newest activity first
    expect(page.locator(f"#message-{delivered} .message-state")).to_contain_text("Delivered")
    assert page_width(page) <= DESKTOP["width"]
    assert page.evaluate(LOW_CONTRAST) == []
    screenshot(page, "desktop-log-messages")
    request_id = log_entries(app, pager)[0]["request_id"]
    page.locator(f"#request-{request_id}").click()
    expect(page.locator(f"#inspect-{request_id}")).to_be_visible()
    screenshot(page, "desktop-log-message-opened")
