"""API fixtures: people with tokens in two organisations, and a client that sends them."""

from __future__ import annotations

import pytest

from tests.api.response_schemas import check_api_responses  # noqa: F401  (autouse: every answer against its schemas)
from webapp.accounts.tokens import create_token
from webapp.core.extensions import db
from webapp.models import find_user_by_email


class Api:
    def __init__(self, client, tokens: dict[str, str]):
        self.client = client
        self.tokens = tokens

    def __call__(self, method: str, path: str, who: str | None = "owner", json=None, headers=None):
        headers = dict(headers or {})
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return self.client.open(path, method=method, json=json, headers=headers)


@pytest.fixture
def api(app, make_user):
    tokens = {}
    with app.app_context():
        for email, org, role in [("owner@example.com", "acme", "owner"), ("manager@example.com", "acme", "manager"),
                                 ("member@example.com", "acme", "member"), ("eve@example.com", "evil", "owner")]:
            if find_user_by_email(email) is None:  # another fixture (world's owner) may have made it
                make_user(email, org, role)
        for who in ("owner", "manager", "member", "eve"):
            _, tokens[who] = create_token(find_user_by_email(f"{who}@example.com"), f"{who} token")
        db.session.remove()
    return Api(app.test_client(), tokens)


@pytest.fixture
def pager_api(api, receiver):
    """An app "Pager" of acme on the receiver, created through the API; returns the API answer."""
    response = api("POST", "/api/0/sentry-apps/", json={
        "name": "Pager", "organization": "acme", "webhookUrl": receiver.url("/hook"), "events": ["issue"],
        "isInternal": True})
    assert response.status_code == 201, response.json
    receiver.secret = response.json["clientSecret"]
    return response.json
