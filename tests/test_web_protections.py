"""Security headers, cookie flags, no caching of secrets, and the request body limit, as a browser sees them."""

import re
from pathlib import Path

import pytest

from webapp.core.config import PROJECT_ROOT

APP = {"name": "Pager", "webhook_url": "https://93.184.216.34/hook", "issue": "y"}


def assert_page_protected(response):
    headers = response.headers
    policy = headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cache-Control"] == "no-store"


def test_pages_carry_the_security_headers(owner):
    owner.post("/orgs/acme/apps/new", APP)
    for path in ("/login", "/orgs/acme/apps", "/orgs/acme/apps/pager", "/settings/tokens", "/no-such-page"):
        response = owner.get(path)
        assert response.mimetype == "text/html", path
        assert_page_protected(response)


def test_static_files_may_be_cached(session):
    with session.get("/static/style.css") as response:
        assert response.status_code == 200 and "no-store" not in response.headers.get("Cache-Control", "")
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_new_token_and_revealed_secret_are_not_stored_by_caches(owner):
    token_page = owner.post("/settings/tokens", {"name": "ci"})
    assert "hkl_" in token_page.get_data(as_text=True) and token_page.headers["Cache-Control"] == "no-store"
    owner.post("/orgs/acme/apps/new", APP)
    for htmx in (True, False):
        revealed = owner.post("/orgs/acme/apps/pager/secret", htmx=htmx)
        assert "whsec_" in revealed.get_data(as_text=True) and revealed.headers["Cache-Control"] == "no-store"
    rotated = owner.post("/orgs/acme/apps/pager/rotate-secret", {"confirm": "1"})  # past the confirmation
    assert "whsec_" in rotated.get_data(as_text=True) and rotated.headers["Cache-Control"] == "no-store"


def test_templates_have_no_inline_scripts_styles_or_handlers():
    # The policy blocks them: they would silently do nothing in the browser. (Emails are not served.)
    inline = re.compile(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=|javascript:", re.IGNORECASE)
    for template in (PROJECT_ROOT / "webapp" / "templates").rglob("*.html"):
        if "emails" not in template.parts:
            assert not inline.search(template.read_text()), template.relative_to(PROJECT_ROOT)


@pytest.mark.parametrize(("base_url", "secure"), [("http://hookline.test", False), ("https://hookline.test", True)])
def test_session_cookie_is_samesite_lax_httponly_and_secure_under_https(settings, base_url, secure, request):
    settings["BASE_URL"] = base_url
    app = request.getfixturevalue("app")
    assert app.config["REMEMBER_COOKIE_SECURE"] is secure and app.config["REMEMBER_COOKIE_SAMESITE"] == "Lax"
    request.getfixturevalue("make_user")()
    cookie = request.getfixturevalue("session").login().headers["Set-Cookie"]
    flags = {flag.strip().lower() for flag in cookie.split(";")[1:]}
    assert "samesite=lax" in flags and "httponly" in flags
    assert ("secure" in flags) is secure


def test_an_oversize_api_body_is_413_with_a_json_detail_and_not_read(app, make_user):
    from webapp.accounts.tokens import create_token
    from webapp.models import find_user_by_email

    make_user()
    with app.app_context():
        _, token = create_token(find_user_by_email("owner@example.com"), "t")
    app.config["MAX_CONTENT_LENGTH"] = 1000
    body = b'{"name": "' + b"x" * 2000 + b'", "organization": "acme", "webhookUrl": "https://93.184.216.34/"}'
    response = app.test_client().post("/api/0/sentry-apps/", data=body, content_type="application/json",
                                      headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 413
    assert response.json == {"detail": "The request body is larger than the 1000 bytes this server accepts."}
    assert response.headers["Cache-Control"] == "no-store"


def test_an_oversize_form_is_413_with_a_plain_page(app, owner):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = owner.post("/orgs/acme/apps/new", {**APP, "name": "x" * 2000})
    assert response.status_code == 413 and response.mimetype == "text/html"
    assert "larger than the 1000 bytes" in response.get_data(as_text=True)


def test_the_default_body_limit_is_two_mebibytes(app):
    assert app.config["MAX_CONTENT_LENGTH"] == 2 * 1024 * 1024
