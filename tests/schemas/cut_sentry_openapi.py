"""Cut Sentry's published OpenAPI document down to the operations Hookline implements.

Source: github.com/getsentry/sentry-api-schema, file openapi-derefed.json (every $ref already inlined), the
document Sentry's generated client @sentry/api is built from. Run with that file's path; it writes
sentry-openapi-subset.json beside this script: the kept paths and methods below, without `examples` (size),
and the document's `openapi`, `info` and the commit it came from.

    python tests/schemas/cut_sentry_openapi.py openapi-derefed.json <commit>
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ORG = "/api/0/organizations/{organization_id_or_slug}"
PROJECT = "/api/0/projects/{organization_id_or_slug}/{project_id_or_slug}"
KEPT = {
    "/api/0/sentry-apps/{sentry_app_id_or_slug}/": ["get", "put", "delete"],
    f"{ORG}/sentry-apps/": ["get"],
    f"{ORG}/sentry-app-installations/": ["get"],
    f"{ORG}/issues/": ["get", "put"],
    f"{PROJECT}/issues/": ["get", "put"],
    f"{ORG}/issues/{{issue_id}}/": ["get", "put"],
    f"{ORG}/issues/{{issue_id}}/events/": ["get"],
    f"{ORG}/issues/{{issue_id}}/events/{{event_id}}/": ["get"],
    f"{PROJECT}/events/": ["get"],
    f"{PROJECT}/events/{{event_id}}/": ["get"],
    f"{ORG}/members/": ["get", "post"],
    f"{ORG}/members/{{member_id}}/": ["get", "put", "delete"],
    f"{PROJECT}/keys/": ["get", "post"],
    f"{PROJECT}/keys/{{key_id}}/": ["get", "put", "delete"],
}


def without_examples(node):
    if isinstance(node, dict):
        return {key: without_examples(value) for key, value in node.items() if key not in ("example", "examples")}
    if isinstance(node, list):
        return [without_examples(value) for value in node]
    return node


def cut(document: dict, commit: str) -> dict:
    paths = {path: {method: without_examples(document["paths"][path][method]) for method in methods}
             for path, methods in KEPT.items()}
    return {"openapi": document["openapi"], "info": {**document["info"], "x-cut-from": commit}, "paths": paths}


if __name__ == "__main__":
    source, commit = sys.argv[1], sys.argv[2]
    subset = cut(json.loads(Path(source).read_text()), commit)
    target = Path(__file__).with_name("sentry-openapi-subset.json")
    target.write_text(json.dumps(subset, indent=1, sort_keys=True) + "\n")
