"""``/healthz``: can this process reach its database and Redis?"""

from flask import Blueprint, jsonify
from sqlalchemy import text

from ..extensions import db
from ..redis_store import get_redis

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz():
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "not answering"; report it, do not crash
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        get_redis().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return jsonify(status="ok" if healthy else "unavailable", **checks), 200 if healthy else 503
