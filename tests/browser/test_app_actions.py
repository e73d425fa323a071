"""Disabling and deleting an app from its page, asking before every destructive button (with and without
JavaScript), and times shown in the reader's own time zone."""

import re
from datetime import datetime, timedelta, timezone

from playwright.sync_api import Page, expect

from tests.browser.dashboard_world import log_in, screenshot
from tests.conftest import PASSWORD
from tests.lifecycle import audit_events, send
from webapp.alerts.alert_rules import save_issue_rule
from webapp.core.extensions import db
from webapp.models import Project


def test_delete_app_asks_for_its_name(page: Page, app, pager, live_server, receiver, run_worker):
    receiver.answer(200)
    send(app, pager)
    run_worker()
    log_in(page, live_server)
    page.goto(f"{live_server}/orgs/acme/apps/pager")
    page.get_by_role("link", name="Delete app…").click()
    expect(page.get_by_role("heading", name="Delete Pager?")).to_be_visible()
    screenshot(page, "desktop-delete-app")

    page.get_by_label("Type Pager to confirm").fill("pager")  # not quite its name
    page.get_by_role("button", name="Delete Pager").click()
    expect(page.get_by_role("alert")).to_have_text("Type Pager exactly to delete it.")

    page.get_by_label("Type Pager to confirm").fill("Pager")
    page.get_by_role("button", name="Delete Pager").click()
    expect(page).to_have_url(f"{live_server}/orgs/acme/apps")
    expect(page.get_by_text("Deleted Pager; it receives no more webhooks.")).to_be_visible()
    expect(page.get_by_role("link", name="Pager", exact=True)).to_have_count(0)
    assert audit_events(app)[-1] == "app.remove"


def test_disable_by_hand_says_who_and_why(page: Page, app, pager, live_server):
    log_in(page, live_server)
    page.goto(f"{live_server}/orgs/acme/apps/pager")
    page.get_by_role("link", name="Disable app…").click()
    page.get_by_label("Reason").fill("Receiver under maintenance until Friday")
    page.get_by_role("button", name="Disable Pager").click()

    banner = page.get_by_test_id("disabled-banner")
    expect(banner).to_contain_text("Pager is disabled")
    expect(page.get_by_test_id("disabled-reason")).to_have_text(
        "Disabled by owner@example.com: Receiver under maintenance until Friday")
    expect(page.get_by_role("link", name="Disable app…")).to_have_count(0)
    screenshot(page, "desktop-disabled-by-hand")
    page.get_by_role("button", name="Re-enable").click()
    expect(page.get_by_test_id("disabled-banner")).to_have_count(0)
    assert audit_events(app)[-2:] == ["app.disable", "app.enable"]


def test_rotate_secret_asks_in_a_dialog_first(page: Page, app, pager, live_server):
    log_in(page, live_server)
    page.goto(f"{live_server}/orgs/acme/apps/pager")
    questions = []

    def answer(dialog, accept):
        questions.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, accept=False))
    page.get_by_role("button", name="Rotate secret").click()
    expect(page.get_by_test_id("client-secret")).to_have_count(0)  # nothing happened
    page.once("dialog", lambda dialog: answer(dialog, accept=True))
    page.get_by_role("button", name="Rotate secret").click()
    expect(page.get_by_text("New secret created.")).to_be_visible()
    expect(page.get_by_test_id("client-secret")).to_be_visible()
    assert questions == ["Rotate the secret of Pager? The current one keeps signing beside the new one for 24 hours."] * 2
    assert page.url == f"{live_server}/orgs/acme/apps/pager"  # the address stays the app page's
    assert audit_events(app).count("app.rotate-secret") == 1


def test_without_javascript_a_page_asks_before_revoking_a_token(browser, app, pager, live_server):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    log_in(page, live_server)
    page.goto(f"{live_server}/settings/tokens")
    page.get_by_label("Token name").fill("ci")
    page.get_by_role("button", name="Create token").click()
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("heading", name="Revoke this token?")).to_be_visible()
    page.get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("cell", name="ci", exact=True)).to_be_visible()

    page.get_by_role("button", name="Revoke").click()
    page.get_by_role("button", name="Revoke token").click()
    expect(page.get_by_text("Token revoked")).to_be_visible()
    expect(page.get_by_text("No tokens yet.")).to_be_visible()
    context.close()


def test_times_show_local_time_and_how_long_ago(browser, app, pager, live_server, receiver, run_worker):
    receiver.answer(200)
    send(app, pager)
    run_worker()
    context = browser.new_context(timezone_id="Asia/Tokyo", locale="en-US")
    page = context.new_page()
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill("owner@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    last = page.locator("td time").first  # the apps list's last delivery
    utc = datetime.fromisoformat(last.get_attribute("datetime").replace("Z", "+00:00"))
    tokyo = utc.astimezone(timezone(timedelta(hours=9)))
    expect(last).to_have_text(re.compile(rf"{tokyo:%-I:%M} [AP]M \((just now|1 minute ago)\)|"
                                          rf"{tokyo:%b} {tokyo.day}, {tokyo:%-I:%M} [AP]M \((just now|1 minute ago)\)"))
    expect(last).to_have_attribute("title", f"{utc:%Y-%m-%d %H:%M} UTC")
    context.close()


def test_delete_rule_asks_in_a_dialog(page: Page, app, world, live_server):
    with app.app_context():
        project = db.session.get(Project, world.project_id)
        save_issue_rule(project, {"name": "Ops pager", "trigger": "first_seen", "frequency_minutes": "30"},
                        [{"sentry_app_id": world.bare_id, "settings": []}])
    log_in(page, live_server)
    page.goto(f"{live_server}/orgs/acme/projects/web")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("cell", name="Ops pager")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("Deleted rule Ops pager.")).to_be_visible()
    expect(page.get_by_role("cell", name="Ops pager")).to_have_count(0)
