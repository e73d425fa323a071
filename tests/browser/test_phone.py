"""On a phone, by touch: open a failed request from the app page, read why it failed, resend it."""

import socket

import pytest
from playwright.sync_api import Page, expect

from tests.browser.dashboard_world import PHONE, log_in, page_width, screenshot
from tests.lifecycle import pager, send  # noqa: F401  (pager is a fixture)
from webapp.core.extensions import db
from webapp.models import SentryApp


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": PHONE, "has_touch": True, "is_mobile": True}


def closed_port() -> int:
    """A local port where nothing listens (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def in_view(locator) -> bool:
    box = locator.bounding_box()
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


def test_open_a_refused_request_by_touch_read_why_and_resend(page: Page, app, pager, live_server, run_worker):
    port = closed_port()
    with app.app_context():
        db.session.get(SentryApp, pager).webhook_url = f"http://127.0.0.1:{port}/hook"
        db.session.commit()
    [message_id] = send(app, pager)
    run_worker()

    log_in(page, live_server)
    page.goto(f"{live_server}/orgs/acme/apps/pager")
    row = page.locator("tr.log-row").first
    expect(row).to_contain_text("refused")
    row.get_by_text("issue.created").tap()  # not the Details link: anywhere on the row opens it

    panel = page.locator("tr.inspector")
    why = panel.locator(".failure-note")
    expect(why).to_contain_text(f"Connection refused: nothing accepted the connection on 127.0.0.1 port {port}.")
    expect(why).to_contain_text(f"Is the receiver running and listening on port {port}?")
    expect(panel.locator(".webhook-id")).to_have_text(message_id)
    resend = panel.get_by_role("button", name="Resend")
    for seen in (why, panel.locator(".webhook-id"), resend):
        assert in_view(seen), f"{seen} is not within the 390 px screen"
    assert page_width(page) <= PHONE["width"]
    screenshot(page, "phone-touch-inspector")

    resend.tap()
    expect(panel.get_by_role("status")).to_contain_text("Resend queued")
    assert in_view(panel.get_by_role("status"))
