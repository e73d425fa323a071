import time

import pytest
from werkzeug.security import check_password_hash

from tests.conftest import PASSWORD, Session, close_app, prepare_database
from webapp import create_app
from webapp.accounts.people import create_user
from webapp.models import find_user_by_email


def test_pages_need_a_login(session):
    response = session.get("/orgs/acme/apps")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_login_with_email_and_password_then_logout(make_user, session):
    make_user("owner@example.com", "acme")
    response = session.login("Owner@Example.com")
    assert response.status_code == 302
    page = session.get("/orgs/acme/apps").get_data(as_text=True)
    assert "owner@example.com" in page and "Internal apps" in page
    session.post("/logout")
    assert session.get("/orgs/acme/apps").status_code == 302


def test_wrong_password_is_refused_with_a_message(make_user, session):
    make_user("owner@example.com", "acme")
    response = session.login(password="wrong-password")
    assert response.status_code == 400
    assert "Wrong email or password." in response.get_data(as_text=True)
    assert session.get("/orgs/acme/apps").status_code == 302


def test_login_page_labels(session):
    page = session.get("/login").get_data(as_text=True)
    assert '<label for="email">Email</label>' in page
    assert '<label for="password">Password</label>' in page


def test_login_does_not_redirect_off_site(make_user, session):
    make_user()
    response = session.post("/login?next=//evil.example/x", {"email": "owner@example.com", "password": "correct-horse-battery"})
    assert response.headers["Location"] == "/"


def test_post_without_csrf_token_is_refused(make_user, app):
    make_user()
    client = app.test_client()
    response = client.post("/login", data={"email": "owner@example.com", "password": "correct-horse-battery"})
    assert response.status_code == 400
    assert client.get("/orgs/acme/apps").status_code == 302


def _fail(session, email="owner@example.com", times=1, **kwargs):
    for _ in range(times):
        assert session.post("/login", {"email": email, "password": "wrong-password"}, **kwargs).status_code == 400


def test_after_five_failures_for_an_email_even_the_right_password_gets_429(make_user, session):
    make_user()
    _fail(session, times=5)
    response = session.login()
    assert response.status_code == 429
    assert "Too many attempts, try again in 15 minutes." in response.get_data(as_text=True)
    assert 890 < int(response.headers["Retry-After"]) <= 900
    assert session.get("/orgs/acme/apps").status_code == 302  # not logged in
    make_user("other@example.com", "acme")
    assert session.login("other@example.com").status_code == 302  # other people still get in


def test_after_twenty_failures_from_an_address_every_login_from_it_gets_429(make_user, app, session):
    make_user()
    for number in range(5):  # four tries each: no single email reaches its limit
        _fail(session, f"guess-{number}@example.com", times=4)
    assert session.login().status_code == 429
    elsewhere = Session(app.test_client())
    assert elsewhere.post("/login", {"email": "owner@example.com", "password": PASSWORD},
                          environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 302


def test_a_successful_login_clears_the_emails_failures(make_user, session):
    make_user()
    _fail(session, times=4)
    assert session.login().status_code == 302
    session.post("/logout")
    _fail(session, times=4)  # without the clearing, the sixth of these eight would be refused
    assert session.login().status_code == 302


@pytest.fixture
def behind_one_proxy(settings):
    settings["TRUSTED_PROXIES"] = "1"


def test_behind_a_trusted_proxy_attempts_count_per_forwarded_address(behind_one_proxy, make_user, session):
    make_user()
    for number in range(5):
        _fail(session, f"guess-{number}@example.com", times=4, environ_base={"HTTP_X_FORWARDED_FOR": "198.51.100.1"})
    assert session.post("/login", {"email": "owner@example.com", "password": PASSWORD},
                        environ_base={"HTTP_X_FORWARDED_FOR": "198.51.100.1"}).status_code == 429
    assert session.post("/login", {"email": "owner@example.com", "password": PASSWORD},
                        environ_base={"HTTP_X_FORWARDED_FOR": "198.51.100.2"}).status_code == 302


@pytest.fixture
def app_without_redis(settings):
    settings["REDIS_URL"] = "redis://127.0.0.1:9/0"  # nothing listens there
    app = create_app(settings)
    prepare_database(app)
    with app.app_context():
        create_user("owner@example.com", PASSWORD, "acme")
    yield app
    close_app(app)


def test_without_redis_logins_are_not_throttled(app_without_redis, caplog):
    session = Session(app_without_redis.test_client())
    _fail(session, times=6)
    assert session.login().status_code == 302
    assert "login.throttle_unchecked reason=ConnectionError" in caplog.text


def test_an_unknown_email_costs_a_password_check_like_a_known_one(make_user, app, session, monkeypatch):
    make_user()
    checked = []

    def spy(password_hash, password):
        checked.append(password_hash)
        return check_password_hash(password_hash, password)

    monkeypatch.setattr("webapp.accounts.people.check_password_hash", spy)
    session.login("nobody@example.com")
    session.login("owner@example.com", "wrong-password")
    assert len(checked) == 2
    with app.app_context():
        real_hash = find_user_by_email("owner@example.com").password_hash
    assert checked[1] == real_hash
    # Same algorithm and parameters (method:cost$salt$hash), so the check costs the same.
    assert checked[0] != real_hash and checked[0].split("$")[0] == real_hash.split("$")[0]


def test_logging_out_ends_a_copied_session_cookie_too(app, owner):
    """A cookie copied before logout (another device, a stolen cookie) stops working at the logout."""
    thief = app.test_client()
    for cookie in owner.client._cookies.values():
        thief.set_cookie(cookie.key, cookie.value, domain=cookie.domain)
    assert thief.get("/orgs/acme/apps").status_code == 200
    assert owner.post("/logout").status_code == 302
    assert thief.get("/orgs/acme/apps").status_code == 302  # to the login page
    assert thief.get("/api/0/organizations/acme/sentry-apps/").status_code == 401


def test_a_session_ends_after_its_idle_time(app, owner):
    app.config["SESSION_IDLE_MINUTES"] = 30
    assert owner.get("/orgs/acme/apps").status_code == 200
    with owner.client.session_transaction() as session:
        session["seen"] -= 31 * 60
    response = owner.get("/orgs/acme/apps")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    page = owner.get(response.headers["Location"]).get_data(as_text=True)
    assert "logged out after 30 minutes without activity" in page
    assert owner.get("/orgs/acme/apps").status_code == 302


def test_a_session_from_before_session_tokens_must_log_in_again(app, owner):
    with owner.client.session_transaction() as session:
        session["_user_id"] = session["_user_id"].split(":")[0]  # what an older release kept
    assert owner.get("/orgs/acme/apps").status_code == 302


def copy_of_login_cookie(app, response):
    """A client holding only the cookie the login answered with (a copy taken then, and never used since)."""
    thief = app.test_client()
    for header in response.headers.getlist("Set-Cookie"):
        name, _, rest = header.partition("=")
        thief.set_cookie(name, rest.split(";")[0], domain="localhost")
    return thief


def test_the_cookie_a_login_answers_with_ends_after_the_idle_time(app, make_user, session):
    """A copy of the login's own cookie, never used since, counts idle time from the login (it was never ended)."""
    app.config["SESSION_IDLE_MINUTES"] = 1
    make_user()
    before = int(time.time())
    response = session.login()
    assert response.status_code == 302
    early, late = copy_of_login_cookie(app, response), copy_of_login_cookie(app, response)
    assert early.get("/orgs/acme/apps").status_code == 200
    with late.session_transaction() as cookie:
        assert before <= cookie.get("seen", 0) <= int(time.time()), "the login's cookie carries no login time"
        cookie["seen"] -= 35 * 60  # as if the copy were used 35 minutes after the login
    answer = late.get("/orgs/acme/apps")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    assert "logged out after 1 minute without activity" in late.get(answer.headers["Location"]).get_data(as_text=True)


def test_a_session_without_a_time_is_ended(app, owner):
    with owner.client.session_transaction() as session:
        del session["seen"]  # what a login before this release left
    assert owner.get("/orgs/acme/apps").status_code == 302


def test_login_refuses_what_is_not_an_email_address_without_counting_it(make_user, session):
    make_user()
    for _ in range(6):
        response = session.post("/login", {"email": "owner@example.com <eve@y.test>", "password": PASSWORD})
        assert response.status_code == 400
        assert "Enter an email address, such as name@example.com" in response.get_data(as_text=True)
    assert session.login().status_code == 302  # six refusals counted nothing against the real email
