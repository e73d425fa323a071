"""Every JSON answer the API tests receive is checked against the OpenAPI documents it claims to follow.

Two documents:
- Sentry's, cut to what Hookline implements: tests/schemas/sentry-openapi-subset.json, made from
  openapi-derefed.json of github.com/getsentry/sentry-api-schema (the document Sentry's generated client
  @sentry/api is built from) by tests/schemas/cut_sentry_openapi.py, which keeps the paths and methods Hookline
  implements and drops `examples`; its `info.x-cut-from` names the commit. OpenAPI 3.0.3: `nullable` is turned
  into JSON Schema by schemathesis' converter (the library that fuzzes the API in test_schemathesis.py).
- Hookline's own (webapp/views/api/schema.py, OpenAPI 3.1: JSON Schema 2020-12 as it is), which also covers what
  Sentry has no path for: test-alert, enable, rotate-secret, health, resend, webhook-requests, audit-logs.

An answer is checked against each document that describes its path, method and status with a JSON schema;
an answer neither describes (a 404 for a path no one has) is not checked. A mismatch fails the test.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from jsonschema import Draft7Validator, Draft202012Validator
from schemathesis.specs.openapi.converter import to_json_schema

from webapp.views.api.schema import openapi_document

SENTRY_DOCUMENT = json.loads((Path(__file__).parents[1] / "schemas" / "sentry-openapi-subset.json").read_text())
HOOKLINE_DOCUMENT = openapi_document("http://hookline.test")
# Sentry still routes /api/0/issues/<id>/ (GroupDetailsEndpoint) but documents only the organisation's path.
SENTRY_ALIASES = {"/api/0/issues/{issue_id}/": "/api/0/organizations/{organization_id_or_slug}/issues/{issue_id}/"}


def _templates(paths) -> list[tuple[re.Pattern, str]]:
    """Each path template as a pattern; the template with the most literal text first (events/latest/ before
    events/{event_id}/)."""
    ordered = sorted(paths, key=lambda template: -len(re.sub(r"\{[^}]+\}", "", template)))
    return [(re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(t)) + "$"), t) for t in ordered]


SENTRY_PATHS = _templates([*SENTRY_DOCUMENT["paths"], *SENTRY_ALIASES])
HOOKLINE_PATHS = _templates(HOOKLINE_DOCUMENT["paths"])


def _response_schema(document: dict, templates, path: str, method: str, status: int) -> tuple[str, dict] | None:
    template = next((template for pattern, template in templates if pattern.match(path)), None)
    if template is None:
        return None
    if template not in document["paths"]:
        template = SENTRY_ALIASES[template]
    operation = document["paths"][template].get(method.lower())
    response = (operation or {}).get("responses", {}).get(str(status), {})
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    return (template, schema) if schema is not None else None


ORG_ISSUES = "/api/0/organizations/{organization_id_or_slug}/issues/"
PROJECT_ISSUES = "/api/0/projects/{organization_id_or_slug}/{project_id_or_slug}/issues/"
# Where Sentry's document disagrees with what Sentry itself answers, Hookline answers as Sentry does. Each case:
# (template, method, status) -> [(what, path to a schema inside the response schema, field)], and why. The README's
# "what differs from Sentry" names them too.
AS_SENTRY_ANSWERS = {
    # The list's expand-only fields are written as always-present objects; Sentry sends inbox null for an issue not
    # in the inbox and owners null without ownership rules (its issue details document both as nullable).
    (ORG_ISSUES, "get", "200"): [("nullable", ("items",), "inbox"), ("nullable", ("items",), "owners")],
    # Sentry's bulk mutate answers the fields the request changed; a request that only assigns has no status.
    (PROJECT_ISSUES, "put", "200"): [("optional", (), "status")],
    # The project list's older hand-written schema wants filename in an error's metadata; Sentry's own metadata has
    # it only when the exception has a stack frame.
    (PROJECT_ISSUES, "get", "200"): [("optional", ("items", "properties", "metadata", "oneOf", 0), "filename")],
}


def as_sentry_answers(template: str, method: str, status: int, schema: dict) -> dict:
    for what, path, name in AS_SENTRY_ANSWERS.get((template, method.lower(), str(status)), []):
        target = schema
        for step in path:
            target = target[step]
        if what == "nullable":
            target["properties"][name] = {**target["properties"][name], "nullable": True}
        else:
            target["required"] = [required for required in target["required"] if required != name]
    return schema


def sentry_validator(schema: dict) -> Draft7Validator:
    return Draft7Validator(to_json_schema(schema, nullable_keyword="nullable", is_response_schema=True))


def hookline_validator(schema: dict) -> Draft202012Validator:
    return Draft202012Validator({**schema, "components": HOOKLINE_DOCUMENT["components"]})


def mismatches(method: str, path: str, status: int, body) -> list[str]:
    """What is wrong with an answer, by each document that describes it (empty: nothing, or undescribed)."""
    found = []
    for name, document, templates, validator in (
            ("Sentry", SENTRY_DOCUMENT, SENTRY_PATHS, sentry_validator),
            ("Hookline", HOOKLINE_DOCUMENT, HOOKLINE_PATHS, hookline_validator)):
        described = _response_schema(document, templates, path, method, status)
        if described is None:
            continue
        template, schema = described
        if name == "Sentry":
            schema = as_sentry_answers(template, method, status, copy.deepcopy(schema))
        for error in sorted(validator(schema).iter_errors(body), key=lambda e: list(e.absolute_path))[:5]:
            where = "/".join(str(part) for part in error.absolute_path) or "(body)"
            found.append(f"{name} {method} {template} {status}: {where}: {error.message[:300]}")
    return found


@pytest.fixture(autouse=True)
def check_api_responses(monkeypatch):
    """Fail the test when an API answer does not match the documents that describe it."""
    original = FlaskClient.open

    def open_and_check(self, *args, **kwargs):
        response = original(self, *args, **kwargs)
        request = response.request
        if request.path.startswith("/api/0/") and response.is_json and request.method != "HEAD":
            problems = mismatches(request.method, request.path, response.status_code, response.get_json())
            assert not problems, "The answer does not match its schema:\n" + "\n".join(problems)
        return response

    monkeypatch.setattr(FlaskClient, "open", open_and_check)
