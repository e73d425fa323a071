"""The request log's messages on a phone, by touch: a failed message, its attempts, why it failed; search."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.dashboard_world import LOW_CONTRAST, PHONE, SHOTS, log_in, page_width, screenshot
from tests.browser.test_phone import closed_port, in_view
from tests.lifecycle import pager, send  # noqa: F401  (pager is a fixture)
from webapp.core.extensions import db
from webapp.models import SentryApp


@pytest.fixture
def failing_and_delivered(app, pager, receiver, run_worker, run_scheduled):
    """A message refused twice (its third attempt waiting) and one delivered; returns their webhook-ids."""
    receiver.answer(200, '{"stored": "yes"}')
    [delivered] = send(app, pager)
    run_worker()
    port = closed_port()
    with app.app_context():
        db.session.get(SentryApp, pager).webhook_url = f"http://127.0.0.1:{port}/hook"
        db.session.commit()
    [failing] = send(app, pager)
    run_worker()
    run_scheduled()
    run_worker()
    return failing, delivered, port


def section_screenshot(page, name: str) -> None:
    """The Request Log section alone (a full phone page is too tall to read at a glance)."""
    if SHOTS:
        page.locator("#request-log").screenshot(path=str(Path(SHOTS) / f"{name}.png"))


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": PHONE, "has_touch": True, "is_mobile": True}


def test_on_a_phone_open_a_failed_message_see_its_attempts_and_why(page: Page, app, pager, live_server,
                                                                   failing_and_delivered):
    failing, delivered, port = failing_and_delivered
    log_in(page, live_server)
    page.goto(f"{live_server}/orgs/acme/apps/pager")
    message = page.locator(f"#message-{failing}")
    expect(message.locator(".message-row")).to_contain_text("retrying")
    expect(message.locator(".message-state")).to_contain_text(
        re.compile(r"Retrying: attempt 2 of 7 failed \(refused\); next attempt at "))
    attempts = message.locator("tr.log-row")
    expect(attempts).to_have_count(2)
    expect(page.locator(f"#message-{delivered} tr.log-row")).to_have_count(1)
    assert page.evaluate(LOW_CONTRAST) == []
    screenshot(page, "phone-log-messages")
    section_screenshot(page, "phone-log-messages-section")
    for seen in (message.locator(".webhook-id"), message.locator(".message-state"), attempts.first):
        assert in_view(seen), f"{seen} is not within the 390 px screen: {seen.bounding_box()}"
    assert page_width(page) <= PHONE["width"]

    attempts.first.get_by_text("refused", exact=True).tap()  # anywhere on the attempt's row opens it
    panel = page.locator("tr.inspector")
    why = panel.locator(".failure-note")
    expect(why).to_contain_text(f"Connection refused: nothing accepted the connection on 127.0.0.1 port {port}.")
    expect(panel).to_contain_text("2 of 7")
    assert in_view(why) and in_view(panel.locator(".webhook-id"))
    assert page_width(page) <= PHONE["width"]
    screenshot(page, "phone-log-message-opened")
    section_screenshot(page, "phone-log-message-opened-section")

    # Search by the message's webhook-id: only it is left; a search that finds nothing says so.
    page.get_by_label("Search").fill(failing)
    page.get_by_role("button", name="Filter").tap()
    expect(page.locator("tbody.message")).to_have_count(1)
    expect(page.locator("tbody.message .webhook-id")).to_have_text(failing)
    page.get_by_label("Search").fill("0" * 32)
    page.get_by_role("button", name="Filter").tap()
    expect(page.get_by_text(f"No message matches \u201c{'0' * 32}\u201d")).to_be_visible()
    page.wait_for_load_state("load")  # the filter is a page load: measured once it is whole, not mid-way
    assert page_width(page) <= PHONE["width"]

