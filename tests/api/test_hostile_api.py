"""Every API operation of the OpenAPI document, each path value, query parameter and JSON field in turn given what
an attacker would send: never a 5xx; a refused character is a 400 ``{"detail"}`` naming it, and nothing is saved."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.views.hostile_forms import database_rows, fill_every_page
from webapp.core.extensions import db
from webapp.models import Group, Membership, ProjectKey

# Strings (a lone surrogate goes as JSON's \ud800 escape, or as the raw bytes it spells in a URL), then the
# other JSON values an attacker tries where an id, a flag or a list is expected.
HOSTILE_TEXT = ["\x00", "a\x00b", "\ud800", "x\udfffy", "☕", "http://☕.example/", "99999999999999999999", "-1",
                "²", "", " ", "\r\n", "\x1b[31m", "\u2028", "invite-99999999999999999999"]
HOSTILE_JSON = [*HOSTILE_TEXT, None, 0, -1, 10**20, -(10**20), 2**63, 1.5, 1e308, True, [], {}, ["\x00"],
                {"\x00": 1}, {"window": 10**20, "count": -1}]


@dataclass(frozen=True)
class Target:
    """One place of one operation an attacker can put a value: a path value, a query parameter or a JSON field."""

    method: str
    path: str  # the document's template, /api/0/sentry-apps/{sentry_app_slug}/
    where: str  # "path", "query" or "body"
    name: str

    def send(self, api, values: dict[str, str], value):
        path_values = {**values, self.name: value} if self.where == "path" else values
        url = self.path.format(**{name: quote(str(text), safe="", errors="surrogatepass")
                                  for name, text in path_values.items()})
        if self.where == "query":
            url += "?" + urlencode({self.name: value}, encoding="utf-8", errors="surrogatepass")
        body = json.dumps({self.name: value}) if self.where == "body" else None  # ASCII: \ud800 stays an escape
        return api.client.open(url, method=self.method, data=body, content_type="application/json",
                               headers={"Authorization": f"Bearer {api.tokens['owner']}"})


def targets_of(document: dict) -> list[Target]:
    """Every path value, query parameter and JSON field of every operation in the OpenAPI document."""
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method not in {"get", "put", "post", "delete", "patch"}:
                continue  # the path's own "parameters", taken with each operation below
            shared = operations.get("parameters", [])
            for parameter in _parameters(document, [*shared, *operation.get("parameters", [])]):
                found.append(Target(method.upper(), path, parameter["in"], parameter["name"]))
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            found.extend(Target(method.upper(), path, "body", name) for name in _properties(document, body))
    return found


def _parameters(document: dict, parameters: list):
    for parameter in parameters:
        if isinstance(parameter, list):  # a group of parameters the document shares between operations
            yield from _parameters(document, parameter)
        else:
            yield _resolve(document, parameter)


def _resolve(document: dict, node):
    while isinstance(node, dict) and "$ref" in node:
        for part in node["$ref"].removeprefix("#/").split("/"):
            document = document[part]
        node = document
    return node


def _properties(document: dict, node) -> set[str]:
    """Every property name a request body's schema mentions, at any depth."""
    node = _resolve(document, node)
    if isinstance(node, list):
        return set().union(*(_properties(document, item) for item in node))
    if not isinstance(node, dict):
        return set()
    names = set(node.get("properties", {}))
    for value in node.values():
        if isinstance(value, (dict, list)):
            names |= _properties(document, value)
    return names


@pytest.fixture
def every_operation(app, api, receiver, run_worker):
    """The document's targets, and a real object for each path value (so operations get past their 404s)."""
    fill_every_page(app, receiver)
    run_worker()
    request_id = api("GET", "/api/0/sentry-apps/everything/webhook-requests/").json[0]["requestId"]
    with app.app_context():
        values = {"organization_slug": "acme", "sentry_app_slug": "everything", "project_slug": "web",
                  "issue_id": db.session.scalar(select(Group.id)), "event_id": "a" * 32,
                  "key_id": db.session.scalar(select(ProjectKey.public_key)), "request_id": request_id,
                  "member_id": db.session.scalar(select(Membership.id).order_by(Membership.id.desc())),
                  "job_id": "0" * 32}
    document = api.client.get("/api/openapi.json").json
    return targets_of(document), values


def test_the_walk_covers_every_api_route(app, every_operation):
    targets, values = every_operation
    adapter = app.url_map.bind("hookline.test")
    walked = {(adapter.match(target.path.format(**values), method=target.method)[0], target.method)
              for target in targets}
    routes = {(rule.endpoint, method) for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/0/")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes - walked == set()


def test_a_nul_anywhere_is_a_400_naming_it_and_nothing_is_saved(app, api, every_operation):
    targets, values = every_operation
    for target in targets:
        before = database_rows(app)
        response = target.send(api, values, "a\x00b")
        if target.where == "path" and response.status_code == 404:  # a number's place: no route matches it
            continue
        assert response.status_code == 400, (target, response.status_code, response.get_data(as_text=True))
        assert "a NUL character (U+0000) is not allowed here. Nothing was saved." in response.json["detail"], target
        assert database_rows(app) == before, f"{target} saved something"


def test_a_lone_surrogate_in_json_is_a_400(app, api, every_operation):
    targets, values = every_operation
    for target in (target for target in targets if target.where == "body"):
        before = database_rows(app)
        response = target.send(api, values, "x\ud800")
        assert response.status_code == 400, (target, response.get_data(as_text=True))
        assert "an unpaired surrogate (U+D800)" in response.json["detail"]
        assert database_rows(app) == before


def test_every_hostile_value_everywhere_is_answered_without_a_server_error(api, every_operation):
    targets, values = every_operation
    for target in sorted(targets, key=lambda target: target.method == "DELETE"):  # deletions last: they end objects
        for value in HOSTILE_TEXT if target.where != "body" else HOSTILE_JSON:
            response = target.send(api, values, value)
            assert response.status_code < 500, (target, value, response.get_data(as_text=True)[:500])


@hypothesis_settings(max_examples=200, deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_hostile_value_anywhere_is_a_server_error(api, every_operation, data):
    targets, values = every_operation
    target = data.draw(st.sampled_from(targets))
    hostile = HOSTILE_TEXT if target.where != "body" else HOSTILE_JSON
    value = data.draw(st.sampled_from(hostile) | st.text(st.characters(codec=None, exclude_categories=()),
                                                         max_size=12))
    response = target.send(api, values, value)
    assert response.status_code < 500, (target, value, response.get_data(as_text=True)[:500])
    assert response.status_code < 400 or "detail" in response.json
