"""Changing the password (knowing the current one) and resetting a forgotten one by email."""

from sqlalchemy import select

from tests.conftest import PASSWORD, Session
from tests.mail import link_in_last_mail
from webapp.accounts.people import get_or_create_organization
from webapp.accounts.tokens import create_token
from webapp.core.extensions import db
from webapp.models import AuditLogEntry, Membership, PasswordReset, find_user_by_email

NEW = "a-brand-new-password"


def audit_events(app) -> list[tuple[int, str]]:
    with app.app_context():
        return [(entry.organization_id, entry.event)
                for entry in db.session.scalars(select(AuditLogEntry).order_by(AuditLogEntry.id))
                if entry.event.startswith("user.")]  # logins are recorded too


def change(session, current=PASSWORD, new=NEW, confirmation=NEW):
    return session.post("/settings/password", {"current": current, "password": new, "confirmation": confirmation})


def test_change_password_keeps_this_browser_and_ends_the_others(app, owner):
    elsewhere = Session(app.test_client())
    elsewhere.login()
    assert elsewhere.get("/orgs/acme/apps").status_code == 200
    response = change(owner)
    assert response.status_code == 303
    page = owner.get("/settings/password").get_data(as_text=True)
    assert "Password changed. You are logged out everywhere else." in page
    assert owner.get("/orgs/acme/apps").status_code == 200
    assert elsewhere.get("/orgs/acme/apps").status_code == 302
    assert Session(app.test_client()).login(password=PASSWORD).status_code == 400
    assert Session(app.test_client()).login(password=NEW).status_code == 302
    assert [event for _, event in audit_events(app)] == ["user.password-change"]


def test_change_password_refuses_a_wrong_current_password_and_bad_new_ones(app, owner):
    for args, message in [({"current": "wrong-password"}, "The current password is wrong."),
                          ({"new": "short", "confirmation": "short"}, "at least 8 characters"),
                          ({"confirmation": NEW + "x"}, "The two passwords are not the same.")]:
        response = change(owner, **args)
        assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert owner.get("/orgs/acme/apps").status_code == 200
    assert Session(app.test_client()).login(password=PASSWORD).status_code == 302
    assert audit_events(app) == []


def test_guessing_the_current_password_is_throttled_like_a_login(owner):
    for _ in range(5):
        assert change(owner, current="wrong-password").status_code == 400
    response = change(owner)
    assert response.status_code == 429 and "Too many attempts" in response.get_data(as_text=True)


def test_login_page_links_to_forgot_password(session):
    assert 'href="/forgot-password">Forgot password?</a>' in session.get("/login").get_data(as_text=True)


def request_reset(session, email="owner@example.com"):
    return session.post("/forgot-password", {"email": email})


def test_an_unknown_email_gets_the_same_answer_and_no_mail(app, make_user, session, smtp, run_worker):
    make_user()
    known = request_reset(session, "owner@example.com")
    unknown = request_reset(session, "nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    assert (known.get_data(as_text=True).replace("owner@example.com", "EMAIL")
            == unknown.get_data(as_text=True).replace("nobody@example.com", "EMAIL"))
    assert "an email with a link to choose a new password is on its way" in " ".join(known.get_data(as_text=True).split())
    run_worker()
    assert [recipients for _, recipients in smtp.envelopes] == [["owner@example.com"]]


def test_the_reset_link_works_once_and_ends_every_session(app, make_user, session, smtp, run_worker):
    make_user("owner@example.com", "acme")
    make_user("other@example.com", "other")
    with app.app_context():  # the owner is in two organisations
        other = get_or_create_organization("other")
        db.session.add(Membership(user_id=find_user_by_email("owner@example.com").id, organization_id=other.id,
                                  role="member"))
        db.session.commit()
    logged_in = Session(app.test_client())
    logged_in.login()
    request_reset(session)
    run_worker()
    assert smtp.messages[-1]["Subject"] == "Reset your Hookline password"
    link = link_in_last_mail(smtp, "owner@example.com", "reset-password")

    assert "owner@example.com" in session.get(link).get_data(as_text=True)
    response = session.post(link, {"password": "short", "confirmation": "short"})
    assert response.status_code == 400 and "at least 8 characters" in response.get_data(as_text=True)
    response = session.post(link, {"password": NEW, "confirmation": NEW})
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert "Log in with the new password." in session.get("/login").get_data(as_text=True)
    assert logged_in.get("/orgs/acme/apps").status_code == 302
    assert session.login(password=NEW).status_code == 302

    again = Session(app.test_client())
    response = again.post(link, {"password": "another-password", "confirmation": "another-password"})
    assert response.status_code == 410 and "already been used" in response.get_data(as_text=True)
    assert Session(app.test_client()).login(password=NEW).status_code == 302
    assert sorted(audit_events(app)) == [(1, "user.password-reset"), (2, "user.password-reset")]


def test_the_reset_link_expires_after_an_hour(app, make_user, session, smtp, run_worker, clock):
    make_user()
    request_reset(session)
    run_worker()
    link = link_in_last_mail(smtp, "owner@example.com", "reset-password")
    clock.advance(minutes=59)
    assert session.get(link).status_code == 200
    clock.advance(minutes=1)
    response = session.post(link, {"password": NEW, "confirmation": NEW})
    assert response.status_code == 410 and "has expired" in response.get_data(as_text=True)
    assert Session(app.test_client()).login(password=PASSWORD).status_code == 302


def test_a_new_reset_link_replaces_the_old_one(app, make_user, session, smtp, run_worker):
    make_user()
    request_reset(session)
    run_worker()
    first = link_in_last_mail(smtp, "owner@example.com", "reset-password")
    request_reset(session)
    run_worker()
    second = link_in_last_mail(smtp, "owner@example.com", "reset-password")
    assert session.get(first).status_code == 404
    assert session.get(second).status_code == 200
    with app.app_context():
        assert len(db.session.scalars(select(PasswordReset)).all()) == 1


def test_unknown_reset_link_is_404(session):
    response = session.get("/reset-password/nope")
    assert response.status_code == 404 and "This password reset link is not valid." in response.get_data(as_text=True)


def test_reset_requests_are_throttled_per_email_whether_or_not_it_exists(session):
    for email in ("owner@example.com", "nobody@example.com"):
        for _ in range(3):
            assert request_reset(session, email).status_code == 200
        response = request_reset(session, email)
        assert response.status_code == 429 and "Too many attempts" in response.get_data(as_text=True)


API_APPS = "/api/0/organizations/acme/sentry-apps/"


def make_token(app, email="owner@example.com", name="ci") -> str:
    with app.app_context():
        return create_token(find_user_by_email(email), name)[1]


def api_status(app, token) -> int:
    return app.test_client().get(API_APPS, headers={"Authorization": f"Bearer {token}"}).status_code


def reset_link(session, smtp, run_worker) -> str:
    request_reset(session)
    run_worker()
    return link_in_last_mail(smtp, "owner@example.com", "reset-password")


def test_a_password_reset_ends_the_api_tokens_unless_the_owner_keeps_them(app, make_user, session, smtp,
                                                                           run_worker):
    """Someone who knew the old password may have made a token: by default the reset ends it."""
    make_user()
    stolen, other = make_token(app), make_token(app, name="deploy")
    assert api_status(app, stolen) == 200
    link = reset_link(session, smtp, run_worker)
    page = session.get(link).get_data(as_text=True)
    assert 'name="keep_tokens" value="1">' in page and "Keep my 2 API tokens working" in page  # unticked
    response = session.post(link, {"password": NEW, "confirmation": NEW})
    assert response.status_code == 303
    assert "Your 2 API tokens no longer work" in session.get("/login").get_data(as_text=True)
    assert api_status(app, stolen) == api_status(app, other) == 401
    with app.app_context():
        entry = db.session.scalar(select(AuditLogEntry).where(AuditLogEntry.event == "user.password-reset"))
        assert entry.data == {"api_tokens_ended": 2}

    kept = make_token(app)
    link = reset_link(session, smtp, run_worker)
    response = session.post(link, {"password": "third-password", "confirmation": "third-password", "keep_tokens": "1"})
    assert response.status_code == 303
    assert "Your API token still works." in session.get("/login").get_data(as_text=True)
    assert api_status(app, kept) == 200


def test_a_refused_reset_keeps_the_tokens(app, make_user, session, smtp, run_worker):
    make_user()
    token = make_token(app)
    link = reset_link(session, smtp, run_worker)
    response = session.post(link, {"password": "short", "confirmation": "short"})
    assert response.status_code == 400
    assert api_status(app, token) == 200


def test_changing_the_password_offers_the_same_choice(app, owner):
    token = make_token(app)
    page = owner.get("/settings/password").get_data(as_text=True)
    assert "Keep my API token working" in page
    assert change(owner, current="wrong-password").status_code == 400
    assert api_status(app, token) == 200  # a refused change ends nothing
    owner.post("/settings/password", {"current": PASSWORD, "password": NEW, "confirmation": NEW, "keep_tokens": "1"})
    assert "Your API token still works." in owner.get("/settings/password").get_data(as_text=True)
    assert api_status(app, token) == 200
    assert change(owner, current=NEW, new=PASSWORD, confirmation=PASSWORD).status_code == 303
    assert "Your API token no longer works" in owner.get("/settings/password").get_data(as_text=True)
    assert api_status(app, token) == 401
    assert "Keep my" not in owner.get("/settings/password").get_data(as_text=True)  # no tokens left to keep


def test_forgot_password_refuses_what_is_not_an_email_address_and_sends_nothing(app, session, smtp, run_worker):
    for email in ["", "<svg/onload=alert(12)>@x.test", "owner@example.com, eve@y.test"]:
        response = request_reset(session, email)
        assert response.status_code == 400
        assert "Enter an email address, such as name@example.com" in response.get_data(as_text=True)
    run_worker()
    assert smtp.envelopes == []
