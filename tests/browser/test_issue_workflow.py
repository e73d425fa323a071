"""A person resolves an issue in the page and sees the issue.resolved request in the app's request log."""

from playwright.sync_api import Page, expect

from tests.alert_world import raise_and_capture
from tests.conftest import PASSWORD


def test_resolve_in_the_page_and_see_the_webhook_in_the_log(page: Page, world, sdk, live_server, run_worker, receiver):
    raise_and_capture("card declined")
    run_worker()

    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill("owner@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("navigation", name="Acme").get_by_role("link", name="Issues").click()
    page.get_by_role("link", name="ValueError: card declined").click()
    expect(page.get_by_test_id("issue-status")).to_have_text("unresolved")

    page.get_by_role("button", name="Resolve").click()
    expect(page.get_by_test_id("issue-status")).to_have_text("resolved")
    run_worker()

    page.get_by_role("navigation", name="Acme").get_by_role("link", name="Apps").click()
    page.get_by_role("link", name="Everything").click()
    page.get_by_label("Event type").select_option("issue.resolved")
    page.get_by_role("button", name="Filter").click()
    row = page.locator("tr.log-row").first
    expect(row).to_contain_text("issue.resolved")
    expect(row).to_contain_text("200")
    [resolved] = receiver.of("issue.resolved")
    assert resolved.sentry_signature_ok and resolved.json["actor"]["type"] == "user"
