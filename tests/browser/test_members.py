"""An owner invites someone by email; they accept in their own browser; the owner removes them and they are out."""

from playwright.sync_api import Page, expect

from tests.browser.dashboard_world import log_in
from tests.mail import link_in_last_mail


def test_invite_accept_and_remove_a_member(page: Page, browser, app, make_user, live_server, smtp, run_worker):
    make_user("owner@example.com", "acme", "owner")
    log_in(page, live_server)
    page.get_by_role("link", name="Members").click()
    page.get_by_label("Email").fill("nina@example.com")
    page.get_by_label("Role", exact=True).select_option("member")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text("Invitation sent to nina@example.com")).to_be_visible()
    expect(page.get_by_test_id("invitations")).to_contain_text("nina@example.com")

    run_worker()  # the mail job
    link = link_in_last_mail(smtp, "nina@example.com", "accept-invite")

    context = browser.new_context()
    nina = context.new_page()
    violations = []
    nina.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    nina.goto(f"{live_server}{link}")
    expect(nina.get_by_role("heading", name="Join Acme")).to_be_visible()
    expect(nina.get_by_test_id("accept-invitation")).to_contain_text("Member")
    nina.get_by_label("Your name").fill("Nina Novak")
    nina.get_by_label("Password", exact=True).fill("nina-password-1")
    nina.get_by_label("Password again").fill("nina-password-1")
    nina.get_by_role("button", name="Create account and join").click()
    expect(nina.get_by_role("heading", name="Acme · Internal apps")).to_be_visible()
    expect(nina.get_by_text("Welcome to Acme: you are member.")).to_be_visible()
    expect(nina.get_by_role("link", name="Members")).to_have_count(0)  # members do not manage members

    page.reload()
    row = page.locator("tr.member-row", has_text="nina@example.com")
    expect(row).to_contain_text("Nina Novak")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Remove").click()
    expect(page.get_by_text("nina@example.com is no longer a member of Acme.")).to_be_visible()

    nina.reload()
    expect(nina.get_by_role("button", name="Log in")).to_be_visible()
    assert "/login" in nina.url
    assert violations == []
    context.close()
