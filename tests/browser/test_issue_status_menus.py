"""A person ignores an issue for two hours from the Ignore until… menu (htmx), then resolves it in the next release;
the page says what brings it back, at desktop and phone widths."""

import os

import pytest
from playwright.sync_api import Page, expect

from tests.alert_world import raise_and_capture
from tests.conftest import PASSWORD

SHOTS = os.environ.get("HOOKLINE_SCREENSHOTS")  # a directory: save each width's screenshot there to look at


@pytest.mark.parametrize("width, height", [(1280, 900), (390, 844)])
def test_ignore_for_two_hours_then_resolve_in_the_next_release(page: Page, world, sdk, live_server, run_worker,
                                                               receiver, width, height):
    page.set_viewport_size({"width": width, "height": height})
    raise_and_capture("card declined")
    run_worker()
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill("owner@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live_server}/orgs/acme/issues/{world.groups()[0].id}")

    menu = page.get_by_test_id("ignore-menu")
    menu.get_by_text("Ignore until…").click()
    menu.get_by_label("For").select_option(label="2 hours")
    if SHOTS:
        # caret "initial": hiding it injects a style the CSP refuses
        page.screenshot(path=f"{SHOTS}/ignore-menu-{width}.png", full_page=True, caret="initial")
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # the open menu fits the screen
    menu.get_by_role("button", name="Ignore for this long").click()
    expect(page.get_by_role("status")).to_have_text("Ignored for 2 hours.")
    expect(page.get_by_test_id("issue-status")).to_have_text("ignored")
    expect(page.get_by_test_id("status-summary")).to_contain_text("it comes back with the first event after")

    resolve = page.get_by_test_id("resolve-menu")
    resolve.get_by_text("Resolve in a release…").click()
    resolve.get_by_role("button", name="In the next release").click()
    expect(page.get_by_role("status")).to_have_text("Resolved in the next release.")
    expect(page.get_by_test_id("status-summary")).to_have_text(
        "Resolved in the next release: an event of a release newer than web@1.2.3 reopens it.")
    expect(page.get_by_test_id("activity").locator("li.activity").last).to_contain_text(
        "owner marked the issue resolved in the next release.")
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/resolved-{width}.png", full_page=True, caret="initial")
    run_worker()
    assert [sent.json["data"]["resolution_type"] for sent in receiver.of("issue.resolved")] == ["in_next_release"]
