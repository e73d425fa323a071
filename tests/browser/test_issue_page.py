"""A person reads an issue's stack trace, resolves it, and sees the confirmation and the activity entry."""

from playwright.sync_api import Page, expect

from tests.alert_world import raise_and_capture
from tests.conftest import PASSWORD


def test_read_the_stack_trace_resolve_and_see_the_flash_and_the_activity(page: Page, world, sdk, live_server,
                                                                          run_worker):
    raise_and_capture("card declined")  # the real sentry-sdk, into the project's DSN
    run_worker()

    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill("owner@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("navigation", name="Acme").get_by_role("link", name="Issues").click()
    page.get_by_role("link", name="ValueError: card declined").click()

    trace = page.locator("section", has=page.get_by_role("heading", name="Stack trace of the latest event"))
    expect(trace.locator(".exception-title")).to_have_text("ValueError: card declined")
    expect(trace.locator(".frame-in-app .frame-function").first).to_have_text("charge_card")
    expect(trace.locator("li.current mark").first).to_have_text("    raise error(message)")

    page.get_by_role("button", name="Resolve", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Resolved.")
    expect(page.get_by_test_id("issue-status")).to_have_text("resolved")
    expect(page.get_by_test_id("activity").locator("li.activity").last).to_contain_text("owner marked the issue resolved.")

    page.get_by_role("link", name="Full event").click()
    raw = page.locator("details.raw-json pre")
    expect(raw).to_be_hidden()
    page.get_by_text("Raw JSON").click()
    expect(raw).to_contain_text('"function": "charge_card"')
