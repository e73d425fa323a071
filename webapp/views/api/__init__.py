"""Hookline's JSON API under /api/0, in Sentry's shapes: bearer tokens, {"detail": …} errors, Link paging."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, g, jsonify, request
from flask_login import current_user
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from ...accounts.tokens import user_for_token
from ...core.extensions import csrf, db
from ...core.input_guard import parse_row_id
from ...core.web_protections import body_too_large
from ...models import MANAGING_ROLES, Organization, Project, User

bp = Blueprint("api", __name__, url_prefix="/api/0")
# Writes need a bearer token (checked below), which a browser never sends on its own: no CSRF risk.
csrf.exempt(bp)

PAGE_SIZE = 100
MAX_OFFSET = 2**31 - 1  # more rows than any list holds, and less than any database's integers
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ApiError(Exception):
    """Answer ``status`` with ``{"detail": detail}``."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


@bp.errorhandler(ApiError)
def api_error(error: ApiError):
    return jsonify(detail=error.detail), error.status


bp.register_error_handler(413, body_too_large)  # before the catch-all below: it names the limit


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException):
    detail = "The requested resource does not exist." if error.code == 404 else error.description
    return jsonify(detail=detail), error.code


@bp.before_request
def authenticate():
    """Find who is asking: ``Authorization: Bearer <token>``, or, for reads only, the dashboard's session."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "Use the header Authorization: Bearer <token>.")
        user = user_for_token(token.strip())
        if user is None:
            raise ApiError(401, "Invalid or revoked token.")
        g.api_user = user
    elif request.method in READ_METHODS and current_user.is_authenticated:
        g.api_user = current_user._get_current_object()
    else:
        raise ApiError(401, "Authentication credentials were not provided.")


def api_user() -> User:
    return g.api_user


def org_for(org_id_or_slug: str) -> tuple[Organization, str]:
    """Return the organisation (by slug, or by id as Sentry also takes) and the caller's role in it; 404 unless
    the caller is a member."""
    for membership in api_user().memberships:
        organization = membership.organization
        if org_id_or_slug in (organization.slug, str(organization.id)):
            return organization, membership.role
    raise ApiError(404, "The requested resource does not exist.")


def project_for(organization: Organization, project_id_or_slug: str) -> Project:
    """Return the organisation's project by slug, or by id as Sentry also takes; 404 otherwise."""
    project = db.session.scalar(select(Project).where(Project.organization_id == organization.id,
                                                      Project.slug == project_id_or_slug))
    project_id = parse_row_id(project_id_or_slug) if project is None else None
    if project_id is not None:
        project = db.session.scalar(select(Project).where(Project.organization_id == organization.id,
                                                          Project.id == project_id))
    if project is None:
        raise ApiError(404, "The requested resource does not exist.")
    return project


def role_in(organization_id: int) -> str:
    role = api_user().role_in(organization_id)
    if role is None:
        raise ApiError(404, "The requested resource does not exist.")
    return role


def require_manager(role: str) -> None:
    if role not in MANAGING_ROLES:
        raise ApiError(403, "You do not have permission to perform this action (owners and managers only).")


def json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return body


def field(body: dict, name: str, kind: type | tuple, *, required: bool = False, nullable: bool = False):
    """Return ``body[name]`` if it has the right type; raise 400 naming the field otherwise."""
    if name not in body:
        if required:
            raise ApiError(400, f"{name}: this field is required.")
        return None
    value = body[name]
    if value is None and nullable:
        return None
    if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ApiError(400, f"{name}: expected {_kind_name(kind)}, got a boolean.")
    if not isinstance(value, kind):
        raise ApiError(400, f"{name}: expected {_kind_name(kind)}.")
    return value


def _kind_name(kind) -> str:
    names = {str: "a string", bool: "true or false", list: "a list", int: "a whole number", dict: "an object"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def flag(name: str) -> bool:
    """Read a true/false query parameter; raise 400 for anything else."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return False
    if raw.lower() in {"1", "true", "yes"}:
        return True
    if raw.lower() in {"0", "false", "no"}:
        return False
    raise ApiError(400, f"{name}: expected true or false.")


def paged(items: list, serialize, wrap=None):
    """Answer one page of ``items`` (as ``wrap(page)`` if given) with Sentry's Link header (cursor ``0:<offset>:0``)."""
    offset = _cursor_offset()
    page = items[offset: offset + PAGE_SIZE]
    rows = [serialize(item) for item in page]
    return _page_response(wrap(rows) if wrap else rows, offset, offset + PAGE_SIZE < len(items), PAGE_SIZE)


def paged_query(statement, serialize_page, page_size: int | None = None):
    """Answer one page of a SELECT (read in SQL: one row more than a page, to know whether another follows)."""
    page_size = page_size or PAGE_SIZE
    offset = _cursor_offset()
    rows = list(db.session.scalars(statement.offset(offset).limit(page_size + 1)))
    return _page_response(serialize_page(rows[:page_size]), offset, len(rows) > page_size, page_size)


def page_limit(name: str = "limit") -> int:
    """Read Sentry's page size parameter (``limit``, or ``per_page``): 1 to 100, default 100; 400 otherwise."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return PAGE_SIZE
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= PAGE_SIZE:
        raise ApiError(400, f"{name}: expected a whole number from 1 to {PAGE_SIZE}.")
    return int(raw)


def _cursor_offset() -> int:
    cursor = request.args.get("cursor", "0:0:0")
    try:
        offset = int(cursor.split(":")[1])
        if not 0 <= offset <= MAX_OFFSET:
            raise ValueError
    except (IndexError, ValueError):
        raise ApiError(400, "cursor: expected a cursor from a Link header, such as 0:100:0.") from None
    return offset


def _page_response(body, offset: int, more: bool, page_size: int):
    response = jsonify(body)
    response.headers["Link"] = ", ".join([
        _link("previous", max(offset - page_size, 0), offset > 0),
        _link("next", offset + page_size, more),
    ])
    return response


def _link(rel: str, offset: int, results: bool) -> str:
    cursor = f"0:{offset}:{1 if rel == 'previous' else 0}"
    query = {key: value for key, value in request.args.items() if key != "cursor"}
    query["cursor"] = cursor
    return f'<{request.base_url}?{urlencode(query)}>; rel="{rel}"; results="{str(results).lower()}"; cursor="{cursor}"'


# Register the routes.
from . import apps, events, issues, members, orgs, project_keys, webhook_messages  # noqa: E402,F401
