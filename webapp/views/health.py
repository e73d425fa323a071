"""``/healthz`` (this process answers), ``/readyz`` (it can do its work) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Response, abort, current_app, jsonify, request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import text

from ..core.extensions import db
from ..core.metrics import HooklineCollector, live_workers, queue_readings
from ..core.redis_store import get_redis

logger = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz():
    """Liveness: the process answers. A load balancer restarts it when this fails, nothing else."""
    return jsonify(status="ok")


@bp.route("/readyz")
def readyz():
    """Readiness: database and Redis answer, a worker is alive, and no queue has fallen behind.

    Answers 200 or 503 with every check and what failed, as JSON.
    """
    checks: dict[str, dict] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as exc:  # any driver error means "not answering"; report it, do not crash
        db.session.rollback()
        checks["database"] = {"ok": False, "error": f"{type(exc).__name__}: the database does not answer"}
    try:
        redis = get_redis()
        redis.ping()
        checks["redis"] = {"ok": True}
    except Exception as exc:
        checks["redis"] = {"ok": False, "error": f"{type(exc).__name__}: Redis does not answer"}
    else:
        processes, slots = live_workers(redis)
        checks["workers"] = {"ok": processes > 0, "processes": processes, "slots": slots}
        if not processes:
            checks["workers"]["error"] = "no worker process has sent a heartbeat in the last minute"
        limit = current_app.config["READY_MAX_QUEUE_AGE"]
        ages = {name: round(reading["oldest_age"], 1) for name, reading in queue_readings(redis).items()}
        late = {name: age for name, age in ages.items() if age > limit}
        checks["queues"] = {"ok": not late, "oldest_job_age_seconds": ages}
        if late:
            checks["queues"]["error"] = (f"oldest waiting job older than {limit:g} s in "
                                         + ", ".join(f"{name} ({age:g} s)" for name, age in late.items()))
    ready = all(check["ok"] for check in checks.values())
    failed = [name for name, check in checks.items() if not check["ok"]]
    if failed:
        logger.warning("readyz.not_ready failed=%s", ",".join(failed))
    return jsonify(status="ready" if ready else "unavailable", failed=failed, checks=checks), 200 if ready else 503


@bp.route("/metrics")
def metrics():
    token = current_app.config["METRICS_TOKEN"]
    if not token:
        abort(404)
    offered = request.headers.get("Authorization", "")
    if not hmac.compare_digest(offered.encode(), f"Bearer {token}".encode()):
        return jsonify(detail="Send Authorization: Bearer <METRICS_TOKEN>."), 401, {"WWW-Authenticate": "Bearer"}
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HooklineCollector(get_redis()))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
