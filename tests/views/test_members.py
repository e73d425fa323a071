"""The members page: invite by email, accept the link, change roles, remove people, revoke invitations."""

from sqlalchemy import select

from tests.conftest import PASSWORD, Session
from tests.mail import link_in_last_mail
from webapp.core.extensions import db
from webapp.models import AuditLogEntry, Invitation, Membership, find_user_by_email


def audit_events(app) -> list[tuple[str, str, dict]]:
    with app.app_context():
        entries = db.session.scalars(select(AuditLogEntry).order_by(AuditLogEntry.id))
        return [(entry.event, entry.target_label, entry.data) for entry in entries
                if entry.event.startswith("member.")]  # logins are recorded too


def invite(owner, email="new@example.com", role="member"):
    return owner.post("/orgs/acme/members/invite", {"email": email, "role": role})


def membership_id(app, email, org="acme"):
    with app.app_context():
        user = find_user_by_email(email)
        return next(m.id for m in user.memberships if m.organization.slug == org)


def test_invite_mail_accept_and_the_new_member_is_listed(app, owner, smtp, run_worker):
    response = invite(owner, "New@Example.com", "manager")
    assert response.status_code == 303
    page = owner.get("/orgs/acme/members").get_data(as_text=True)
    assert "Invitation sent to new@example.com; the link works for 7 days." in page
    assert "new@example.com" in page and "Pending invitations" in page
    run_worker()
    assert smtp.messages[-1]["Subject"] == "Join Acme on Hookline"
    link = link_in_last_mail(smtp, "new@example.com", "accept-invite")

    newcomer = Session(app.test_client())
    page = newcomer.get(link).get_data(as_text=True)
    assert "Join Acme" in page and "Manager" in page and "new@example.com" in page
    response = newcomer.post(link, {"name": "Nina New", "password": "long-enough-1", "confirmation": "long-enough-1"})
    assert response.status_code == 303 and response.headers["Location"] == "/orgs/acme/apps"
    page = newcomer.get("/orgs/acme/apps").get_data(as_text=True)
    assert "Welcome to Acme: you are a manager." in page and "new@example.com" in page

    page = owner.get("/orgs/acme/members").get_data(as_text=True)
    assert "Nina New" in page and "No pending invitations." in page
    again = Session(app.test_client())
    assert again.get(link).status_code == 410
    assert "already been used" in again.get(link).get_data(as_text=True)
    assert [event for event, _, _ in audit_events(app)] == ["member.invite", "member.join"]


def test_bad_invitations_get_a_clear_error_and_change_nothing(app, owner, make_user, smtp, run_worker):
    make_user("member@example.com", "acme", "member")
    cases = [("not-an-email", "member", "Enter an email address"),
             ("ann\r\n@example.com", "member", "Enter an email address"),
             ("ann@example.com", "admin", "Choose a role: owner, manager, member."),
             ("member@example.com", "owner", "member@example.com is already a member of Acme.")]
    for email, role, message in cases:
        response = invite(owner, email, role)
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)
    run_worker()
    assert smtp.messages == [] and audit_events(app) == []
    with app.app_context():
        assert db.session.scalars(select(Invitation)).all() == []


def test_inviting_again_renews_the_link_and_the_old_one_stops_working(app, owner, smtp, run_worker):
    invite(owner, role="member")
    run_worker()
    first = link_in_last_mail(smtp, "new@example.com", "accept-invite")
    invite(owner, role="manager")
    run_worker()
    second = link_in_last_mail(smtp, "new@example.com", "accept-invite")
    assert first != second
    visitor = Session(app.test_client())
    assert visitor.get(first).status_code == 404
    assert "Manager" in visitor.get(second).get_data(as_text=True)
    with app.app_context():
        assert len(db.session.scalars(select(Invitation)).all()) == 1


def test_a_revoked_invitation_link_says_it_is_no_longer_valid(app, owner, smtp, run_worker):
    invite(owner)
    run_worker()
    link = link_in_last_mail(smtp, "new@example.com", "accept-invite")
    with app.app_context():
        invitation_id = db.session.scalar(select(Invitation.id))
    assert owner.post(f"/orgs/acme/members/invitations/{invitation_id}/revoke").status_code == 200  # asks first
    response = owner.post(f"/orgs/acme/members/invitations/{invitation_id}/revoke", {"confirm": "1"})
    assert response.status_code == 303
    assert "No pending invitations." in owner.get("/orgs/acme/members").get_data(as_text=True)

    visitor = Session(app.test_client())
    response = visitor.get(link)
    assert response.status_code == 410
    assert "no longer valid" in response.get_data(as_text=True)
    response = visitor.post(link, {"name": "Nina", "password": "long-enough-1", "confirmation": "long-enough-1"})
    assert response.status_code == 410
    with app.app_context():
        assert find_user_by_email("new@example.com") is None
    assert [event for event, _, _ in audit_events(app)] == ["member.invite", "member.invite-revoke"]


def test_an_invitation_expires_after_seven_days(app, owner, smtp, run_worker, clock):
    invite(owner)
    run_worker()
    link = link_in_last_mail(smtp, "new@example.com", "accept-invite")
    clock.advance(days=6, hours=23)
    visitor = Session(app.test_client())
    assert visitor.get(link).status_code == 200
    clock.advance(hours=1)
    response = visitor.post(link, {"name": "Nina", "password": "long-enough-1", "confirmation": "long-enough-1"})
    assert response.status_code == 410
    assert "expired" in response.get_data(as_text=True)
    with app.app_context():
        assert find_user_by_email("new@example.com") is None


def test_unknown_link_is_404(session):
    response = session.get("/accept-invite/not-a-real-token")
    assert response.status_code == 404
    assert "This invitation link is not valid." in response.get_data(as_text=True)


def test_accepting_refuses_a_short_password_a_mismatch_and_control_characters(app, owner, smtp, run_worker):
    invite(owner)
    run_worker()
    link = link_in_last_mail(smtp, "new@example.com", "accept-invite")
    visitor = Session(app.test_client())
    for form, message in [({"name": "Nina", "password": "short", "confirmation": "short"}, "at least 8 characters"),
                          ({"name": "Nina", "password": "long-enough-1", "confirmation": "long-enough-2"},
                           "The two passwords are not the same."),
                          ({"name": "Nina\nBcc: x", "password": "long-enough-1", "confirmation": "long-enough-1"},
                           "must not contain line breaks"),
                          ({"name": "", "password": "long-enough-1", "confirmation": "long-enough-1"}, "Give your name")]:
        response = visitor.post(link, form)
        assert response.status_code == 400 and message in response.get_data(as_text=True)
    with app.app_context():
        assert find_user_by_email("new@example.com") is None
    assert visitor.get(link).status_code == 200  # still usable


def test_an_existing_account_must_log_in_to_accept(app, owner, make_user, smtp, run_worker):
    make_user("eve@example.com", "other", "owner")
    invite(owner, "eve@example.com", "member")
    run_worker()
    link = link_in_last_mail(smtp, "eve@example.com", "accept-invite")
    visitor = Session(app.test_client())
    page = visitor.get(link).get_data(as_text=True)
    assert "already has a Hookline account" in page and "Log in as eve@example.com" in page
    response = visitor.post(link, {"name": "Mallory", "password": "long-enough-1", "confirmation": "long-enough-1"})
    assert response.status_code == 400 and "log in as eve@example.com to accept" in response.get_data(as_text=True)

    visitor.login("eve@example.com")
    assert "Join Acme" in visitor.get(link).get_data(as_text=True)
    assert visitor.post(link).status_code == 303
    assert visitor.get("/orgs/acme/apps").status_code == 200
    assert visitor.get("/orgs/other/apps").status_code == 200
    with app.app_context():
        assert find_user_by_email("eve@example.com").check_password(PASSWORD)


def test_change_a_role_and_the_audit_log_says_from_what_to_what(app, owner, make_user):
    make_user("member@example.com", "acme", "member")
    target = membership_id(app, "member@example.com")
    response = owner.post(f"/orgs/acme/members/{target}/role", {"role": "manager"})
    assert response.status_code == 303
    assert "member@example.com is now a manager." in owner.get("/orgs/acme/members").get_data(as_text=True)
    assert audit_events(app) == [("member.edit", "member@example.com", {"role": ["member", "manager"]})]
    response = owner.post(f"/orgs/acme/members/{target}/role", {"role": "boss"})
    assert response.status_code == 400 and "Choose a role" in response.get_data(as_text=True)


def test_the_last_owner_can_be_neither_demoted_nor_removed(app, owner, make_user):
    me = membership_id(app, "owner@example.com")
    response = owner.post(f"/orgs/acme/members/{me}/role", {"role": "member"})
    assert response.status_code == 400
    assert "owner@example.com is the only owner of Acme" in response.get_data(as_text=True)
    response = owner.post(f"/orgs/acme/members/{me}/remove", {"confirm": "1"})
    assert response.status_code == 400
    with app.app_context():
        assert db.session.get(Membership, me).role == "owner"
    assert audit_events(app) == []
    make_user("second@example.com", "acme", "owner")  # with a second owner, the first may step down
    assert owner.post(f"/orgs/acme/members/{me}/role", {"role": "manager"}).status_code == 303


def test_removing_a_member_ends_their_sessions_even_a_copied_cookie(app, owner, make_user):
    make_user("member@example.com", "acme", "member")
    member = Session(app.test_client())
    member.login("member@example.com")
    copied = app.test_client()
    copied.set_cookie("session", member.client.get_cookie("session").value, domain="localhost")
    assert copied.get("/orgs/acme/apps").status_code == 200

    target = membership_id(app, "member@example.com")
    response = owner.post(f"/orgs/acme/members/{target}/remove", {"confirm": "1"})
    assert response.status_code == 303
    page = owner.get("/orgs/acme/members").get_data(as_text=True)
    assert "member@example.com is no longer a member of Acme." in page
    for client in (member.client, copied):
        response = client.get("/orgs/acme/apps")
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert audit_events(app) == [("member.remove", "member@example.com",
                                  {"email": "member@example.com", "role": "member"})]


def test_managers_read_the_list_members_cannot_see_it(app, make_user):
    make_user("owner@example.com", "acme", "owner")
    make_user("manager@example.com", "acme", "manager")
    make_user("member@example.com", "acme", "member")
    manager = Session(app.test_client())
    manager.login("manager@example.com")
    page = manager.get("/orgs/acme/members").get_data(as_text=True)
    assert "owner@example.com" in page and "Invite someone" not in page and "Change role" not in page
    assert 'href="/orgs/acme/members"' in page
    assert manager.post("/orgs/acme/members/invite", {"email": "x@example.com", "role": "owner"}).status_code == 403
    target = membership_id(app, "member@example.com")
    assert manager.post(f"/orgs/acme/members/{target}/remove", {"confirm": "1"}).status_code == 403
    assert manager.post(f"/orgs/acme/members/{target}/role", {"role": "owner"}).status_code == 403

    member = Session(app.test_client())
    member.login("member@example.com")
    assert member.get("/orgs/acme/members").status_code == 403
    assert 'href="/orgs/acme/members"' not in member.get("/orgs/acme/apps").get_data(as_text=True)
    assert member.get("/orgs/other/members").status_code == 404


def test_posts_without_a_csrf_token_are_refused(app, owner):
    response = owner.client.post("/orgs/acme/members/invite", data={"email": "new@example.com", "role": "member"})
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalars(select(Invitation)).all() == []


def test_an_email_that_smtp_would_read_differently_is_refused_and_nothing_is_sent(app, owner, smtp, run_worker):
    """What the page would show and where the mail would go must be one address (else a link reaches a stranger)."""
    for email in ["<svg/onload=alert(12)>@x.test", "bob@x.test <eve@y.test>", "bob@x.test,eve@y.test",
                  "bob@x.test;eve@y.test", '"bob eve"@x.test', "bob eve@x.test", "bob@eve@x.test", "(eve)bob@x.test",
                  "bob@x", "bób@x.test"]:
        response = invite(owner, email)
        assert response.status_code == 400, email
        assert "Enter an email address, such as name@example.com" in response.get_data(as_text=True), email
    run_worker()
    assert smtp.envelopes == [] and audit_events(app) == []
    with app.app_context():
        assert db.session.scalars(select(Invitation)).all() == []


def test_an_unusual_but_plain_address_is_mailed_exactly_as_shown(app, owner, smtp, run_worker):
    assert invite(owner, "O'Brien+hooks@Mail.Example.com").status_code == 303
    page = owner.get("/orgs/acme/members").get_data(as_text=True)
    assert "Invitation sent to o&#39;brien+hooks@mail.example.com" in page
    run_worker()
    assert [recipients for _, recipients in smtp.envelopes] == [["o'brien+hooks@mail.example.com"]]


def test_the_only_owner_is_offered_neither_remove_nor_change_role(app, owner, make_user):
    make_user("member@example.com", "acme", "member")
    page = owner.get("/orgs/acme/members").get_data(as_text=True)
    assert page.count(">Remove</button>") == 1 and "Role of member@example.com" in page  # the member's row only
    assert "Role of owner@example.com" not in page and "the only one: make someone else an owner" in page
    make_user("second@example.com", "acme", "owner")
    page = owner.get("/orgs/acme/members").get_data(as_text=True)
    assert page.count(">Remove</button>") == 3 and "Role of owner@example.com" in page
