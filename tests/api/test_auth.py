"""Who may call the API: tokens (shown once, stored hashed, revocable), roles, organisations."""

import re

import pytest
from sqlalchemy import select

from tests.conftest import Session
from webapp.core.extensions import db
from webapp.models import ApiToken

ENDPOINTS = [
    ("GET", "/api/0/organizations/acme/sentry-apps/"),
    ("POST", "/api/0/sentry-apps/"),
    ("GET", "/api/0/sentry-apps/pager/"),
    ("PUT", "/api/0/sentry-apps/pager/"),
    ("DELETE", "/api/0/sentry-apps/pager/"),
    ("GET", "/api/0/sentry-apps/pager/webhook-requests/"),
    ("POST", f"/api/0/sentry-apps/pager/webhook-requests/{'0' * 32}/resend/"),
    ("POST", "/api/0/sentry-apps/pager/test-alert/"),
    ("POST", "/api/0/sentry-apps/pager/enable/"),
    ("POST", "/api/0/sentry-apps/pager/rotate-secret/"),
    ("GET", "/api/0/sentry-apps/pager/health/"),
    ("GET", "/api/0/organizations/acme/audit-logs/"),
    ("GET", "/api/0/organizations/acme/issues/1/"),
    ("PUT", "/api/0/organizations/acme/issues/1/"),
    ("GET", "/api/0/projects/acme/web/events/0123456789abcdef0123456789abcdef/"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_no_token_or_a_bad_one_is_401(api, pager_api, method, path):
    for headers in [{}, {"Authorization": "Bearer hkl_not-a-real-token"}, {"Authorization": "Basic dXNlcjpwdw=="},
                    {"Authorization": "Bearer "}]:
        response = api(method, path, who=None, headers=headers, json={})
        assert response.status_code == 401, (headers, response.json)
        assert response.json["detail"]


@pytest.mark.parametrize(("method", "path"), [e for e in ENDPOINTS if "issues" not in e[1] and "events" not in e[1]])
def test_another_orgs_objects_are_404(api, pager_api, method, path):
    response = api(method, path, who="eve", json={"name": "x", "organization": "acme", "webhookUrl": "https://93.184.216.34/"})
    if path == "/api/0/sentry-apps/":
        assert response.status_code == 404  # creating in an organisation eve is not in
    else:
        assert response.status_code == 404, response.json
    assert api("GET", "/api/0/sentry-apps/pager/").status_code == 200  # nothing changed


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/api/0/sentry-apps/"), ("PUT", "/api/0/sentry-apps/pager/"), ("DELETE", "/api/0/sentry-apps/pager/"),
    ("POST", "/api/0/sentry-apps/pager/test-alert/"), ("POST", "/api/0/sentry-apps/pager/enable/"),
    ("POST", "/api/0/sentry-apps/pager/rotate-secret/"), ("GET", "/api/0/organizations/acme/audit-logs/"),
    ("POST", f"/api/0/sentry-apps/pager/webhook-requests/{'0' * 32}/resend/")])
def test_members_are_403_for_manager_actions(api, pager_api, method, path):
    response = api(method, path, who="member", json={"name": "Other", "organization": "acme",
                                                     "webhookUrl": "https://93.184.216.34/"})
    assert response.status_code == 403 and "owners and managers" in response.json["detail"]
    app = api("GET", "/api/0/sentry-apps/pager/", who="member").json
    assert app["name"] == "Pager" and app["clientSecret"] is None  # members read, without the secret


def test_tokens_are_shown_once_stored_hashed_and_revocable(app, make_user):
    make_user("owner@example.com", "acme", "owner")
    session = Session(app.test_client())
    session.login()
    page = session.post("/settings/tokens", {"name": "terraform"}).get_data(as_text=True)
    token = re.search(r'data-testid="new-token">(hkl_[\w-]+)<', page).group(1)
    assert token not in session.get("/settings/tokens").get_data(as_text=True)  # shown once
    with app.app_context():
        row = db.session.scalar(select(ApiToken))
        assert row.name == "terraform" and token not in (row.token_hash, row.prefix) and len(row.token_hash) == 64
        token_id = row.id
    client = app.test_client()
    assert client.get("/api/0/organizations/acme/sentry-apps/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    session.post(f"/settings/tokens/{token_id}/revoke", {"confirm": "1"})  # confirmed (the dialog or the confirm page)
    assert client.get("/api/0/organizations/acme/sentry-apps/", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_create_token_cli(app, runner, make_user):
    make_user("owner@example.com", "acme", "owner")
    result = runner.invoke(args=["create-token", "--email", "owner@example.com"])
    assert result.exit_code == 0 and result.output.startswith("hkl_")
    response = app.test_client().get("/api/0/organizations/acme/sentry-apps/",
                                     headers={"Authorization": f"Bearer {result.output.strip()}"})
    assert response.status_code == 200
    missing = runner.invoke(args=["create-token", "--email", "nobody@example.com"])
    assert missing.exit_code != 0 and "no user" in missing.output


def test_the_dashboard_session_may_read_but_not_write(app, api, pager_api):
    session = Session(app.test_client())
    session.login()
    assert session.client.get("/api/0/sentry-apps/pager/").status_code == 200
    response = session.client.put("/api/0/sentry-apps/pager/", json={"name": "Hijacked"})
    assert response.status_code == 401
    assert api("GET", "/api/0/sentry-apps/pager/").json["name"] == "Pager"
