"""A project's client keys through the API, in Sentry's ProjectKey shape (the key's id is its public key)."""

from __future__ import annotations

from flask import current_app, jsonify

from ...apps.project_keys import RATE_LIMIT_MAX, ProjectKeyError, create_key, delete_key, update_key
from ...core.extensions import db
from ...models import ProjectKey
from ..helpers import get_key_or_404
from . import ApiError, api_user, bp, field, json_body, org_for, paged, project_for, require_manager
from .apps import iso

RATE_LIMIT_WINDOW = 60  # Hookline counts a key's events per minute
API_FIELDS = {"label": "name", "is_active": "isActive", "rate_limit": "rateLimit"}


# DSN forms of Sentry's for what Hookline does not receive (CSP and NEL reports, minidumps, crons, OTLP...).
UNSERVED_DSN_FORMS = ("csp", "security", "minidump", "nel", "unreal", "crons", "cdn", "playstation", "integration",
                      "otlp_traces", "otlp_logs")


def serialize_key(key: ProjectKey) -> dict:
    """Sentry's ProjectKey. A Hookline key has no secret part (``secret`` is null, ``dsn.secret`` the public DSN)
    and no JavaScript loader; the DSN forms of what Hookline does not receive are empty strings."""
    base_url = current_app.config["BASE_URL"]
    dsn = key.dsn(base_url)
    return {
        "id": key.public_key,
        "name": key.label,
        "label": key.label,
        "public": key.public_key,
        "secret": None,
        "isActive": key.is_active,
        "dateCreated": iso(key.date_added),
        "projectId": key.project_id,
        "rateLimit": {"window": RATE_LIMIT_WINDOW, "count": key.rate_limit} if key.rate_limit else None,
        "dsn": {"public": dsn, "secret": dsn, **{form: "" for form in UNSERVED_DSN_FORMS},
                "store": f"{base_url}/api/{key.project_id}/store/",
                "envelope": f"{base_url}/api/{key.project_id}/envelope/"},
        "browserSdkVersion": "",
        "browserSdk": {"choices": []},
        "dynamicSdkLoaderOptions": {"hasReplay": False, "hasPerformance": False, "hasDebug": False,
                                    "hasFeedback": False, "hasLogsAndMetrics": False},
        "useCase": "user",
    }


@bp.route("/projects/<org_slug>/<project_slug>/keys/", methods=["GET"])
def list_keys(org_slug, project_slug):
    organization, _ = org_for(org_slug)
    return paged(project_for(organization, project_slug).client_keys, serialize_key)


@bp.route("/projects/<org_slug>/<project_slug>/keys/", methods=["POST"])
def create_key_endpoint(org_slug, project_slug):
    organization, role = org_for(org_slug)
    project = project_for(organization, project_slug)
    require_manager(role)
    body = json_body()
    label = field(body, "name", str)
    if label is None:  # as in Sentry, the name is optional
        label = f"Key {len(project.client_keys) + 1}"
    rate_limit = _rate_limit(body) if "rateLimit" in body else None
    try:
        key = create_key(project, label, api_user().id, rate_limit)
    except ProjectKeyError as exc:
        db.session.rollback()
        raise _field_error(exc) from None
    return jsonify(serialize_key(key)), 201


@bp.route("/projects/<org_slug>/<project_slug>/keys/<key_id>/", methods=["GET"])
def get_key(org_slug, project_slug, key_id):
    organization, _ = org_for(org_slug)
    return jsonify(serialize_key(get_key_or_404(project_for(organization, project_slug), key_id)))


@bp.route("/projects/<org_slug>/<project_slug>/keys/<key_id>/", methods=["PUT"])
def update_key_endpoint(org_slug, project_slug, key_id):
    """Change ``name``, ``isActive`` and/or ``rateLimit`` ({"window": 60, "count": N} or null)."""
    organization, role = org_for(org_slug)
    key = get_key_or_404(project_for(organization, project_slug), key_id)
    require_manager(role)
    body = json_body()
    changes = {"label": field(body, "name", str), "is_active": field(body, "isActive", bool)}
    changes = {name: value for name, value in changes.items() if value is not None}
    if "rateLimit" in body:
        changes["rate_limit"] = _rate_limit(body)
    try:
        update_key(key, changes, api_user().id)
    except ProjectKeyError as exc:
        db.session.rollback()
        raise _field_error(exc) from None
    return jsonify(serialize_key(key))


@bp.route("/projects/<org_slug>/<project_slug>/keys/<key_id>/", methods=["DELETE"])
def delete_key_endpoint(org_slug, project_slug, key_id):
    organization, role = org_for(org_slug)
    key = get_key_or_404(project_for(organization, project_slug), key_id)
    require_manager(role)
    delete_key(key, api_user().id)
    return "", 204


def _rate_limit(body: dict) -> int | None:
    """Read ``rateLimit``: null (no limit of the key's own) or {"window": 60, "count": N}; 400 otherwise."""
    value = field(body, "rateLimit", dict, nullable=True)
    if value is None:
        return None
    window, count = value.get("window"), value.get("count")
    if isinstance(window, bool) or window != RATE_LIMIT_WINDOW:
        raise ApiError(400, f"rateLimit: window must be {RATE_LIMIT_WINDOW} (seconds); Hookline counts a key's "
                            "events per minute.")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= RATE_LIMIT_MAX:
        raise ApiError(400, f"rateLimit: count must be a whole number from 1 to {RATE_LIMIT_MAX}.")
    return count


def _field_error(exc: ProjectKeyError) -> ApiError:
    return ApiError(400, f"{API_FIELDS.get(exc.field, exc.field)}: {exc}")
