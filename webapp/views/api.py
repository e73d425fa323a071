"""The API resources that webhook payloads link to (``url``, ``issue_url``), in Sentry's shapes."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify
from flask_login import current_user
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from ..dispatch.serializers import serialize_event, serialize_issue
from ..extensions import db
from ..models import Event
from .helpers import get_group_or_404, get_org_or_404, get_project_or_404

bp = Blueprint("api", __name__, url_prefix="/api/0")


@bp.before_request
def require_login():
    if not current_user.is_authenticated:
        return jsonify(detail="Authentication credentials were not provided."), 401
    return None


@bp.errorhandler(HTTPException)
def json_error(error: HTTPException):
    return jsonify(detail=error.description if error.code != 404 else "The requested resource does not exist"), error.code


@bp.route("/projects/<org_slug>/<project_slug>/events/<event_id>/")
def event(org_slug, project_slug, event_id):
    organization, _ = get_org_or_404(org_slug)
    project = get_project_or_404(organization, project_slug)
    row = db.session.scalar(select(Event).where(Event.project_id == project.id, Event.event_id == event_id))
    if row is None:
        abort(404)
    return jsonify(serialize_event(row, current_app.config["BASE_URL"]))


@bp.route("/organizations/<org_slug>/issues/<int:group_id>/")
def issue(org_slug, group_id):
    organization, _ = get_org_or_404(org_slug)
    return jsonify(serialize_issue(get_group_or_404(organization, group_id), current_app.config["BASE_URL"]))
