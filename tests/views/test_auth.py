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
