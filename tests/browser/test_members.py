"""An owner invites someone by email; they accept in their own browser; the owner removes them and they are out."""

from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.browser.dashboard_world import log_in
from tests.mail import link_in_last_mail
from webapp.core.extensions import db
from webapp.models import Membership, User


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
    expect(nina.get_by_text("Welcome to Acme: you are a member.")).to_be_visible()
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


def test_a_refused_remove_says_why_where_the_button_was(page: Page, app, make_user, live_server):
    """Two owners; while the page is open the other one is made a manager, so removing myself would leave no
    owner: the 400 is shown (htmx alone would ignore it), and nothing changed."""
    make_user("owner@example.com", "acme", "owner")
    make_user("second@example.com", "acme", "owner")
    log_in(page, live_server)
    page.goto(f"{live_server}/orgs/acme/members")
    mine = page.locator("tr.member-row", has_text="owner@example.com")
    expect(mine.get_by_role("button", name="Remove")).to_be_visible()  # not the only owner: offered

    with app.app_context():
        second = db.session.scalar(select(Membership).join(User).where(User.email == "second@example.com"))
        second.role = "manager"
        db.session.commit()
    page.once("dialog", lambda dialog: dialog.accept())
    mine.get_by_role("button", name="Remove").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "owner@example.com is the only owner of Acme: make someone else an owner before removing them.")
    mine = page.locator("tr.member-row", has_text="owner@example.com")
    expect(mine.get_by_role("button", name="Remove")).to_have_count(0)  # the page now shows the truth
