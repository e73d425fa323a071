"""A request that needs a dependency that is down answers 503 with Retry-After, and logs one line.

The dashboard gets a page that says which dependency is away, the API and ingestion ``{"detail"}``; SDKs
and API clients retry after ``RETRY_AFTER`` seconds. Only "cannot reach it" errors are outages: a wrong
statement or command is a bug, and stays a 500 with its traceback.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from .extensions import db

logger = logging.getLogger(__name__)

RETRY_AFTER = 30  # seconds; a restart or fail-over of Redis or the database takes about this long

NAMES = {"database": "The database", "redis": "Redis (the queue and cache)"}


class TransientFailure(Exception):
    """A service outside Hookline (an SMTP server) did not answer: the job is retried, and logged in one line."""


def is_database_outage(exc: BaseException | None) -> bool:
    """Say whether ``exc`` means the database could not be reached (not that a statement was wrong)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (OperationalError, InterfaceError))


def close_session() -> None:
    """End this app context's database session; a database that went away must not take the worker with it."""
    try:
        db.session.remove()
    except Exception as exc:  # noqa: BLE001 - the connection is gone; the pool replaces it on next use
        logger.warning("worker.session_close_failed reason=%s", exc.__class__.__name__)


def unavailable(dependency: str, exc: BaseException):
    """The 503 answer for a request that needed ``dependency`` ("database" or "redis")."""
    logger.warning("request.unavailable dependency=%s method=%s path=%s error=%s", dependency, request.method,
                   request.path, exc.__class__.__name__)
    detail = f"{NAMES[dependency]} is not answering; try again in {RETRY_AFTER} seconds."
    headers = {"Retry-After": str(RETRY_AFTER)}
    if request.path.startswith("/api/"):
        return jsonify(detail=detail, dependency=dependency), 503, headers
    # A page of its own, not base.html: the top bar reads the logged-in user from the database.
    return render_template("errors/unavailable.html", detail=detail, dependency=dependency), 503, headers


def init_app(app: Flask) -> None:
    @app.errorhandler(RedisConnectionError)
    @app.errorhandler(RedisTimeoutError)
    @app.errorhandler(BusyLoadingError)
    def redis_down(exc):
        return unavailable("redis", exc)

    @app.errorhandler(DBAPIError)
    def database_error(exc):
        if not is_database_outage(exc):
            raise exc  # a bug, not an outage: Flask's 500, with its traceback in the log
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the connection is gone; the pool replaces it on next use
            pass
        return unavailable("database", exc)
