"""The Redis connection shared by the web app, the dispatcher and RQ."""

from __future__ import annotations

import redis
from flask import Flask, current_app


def init_app(app: Flask) -> None:
    # RQ stores pickled job data, so this client must not decode responses; JSON readers decode themselves.
    app.extensions["redis"] = redis.Redis.from_url(
        app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
    )


def get_redis() -> redis.Redis:
    return current_app.extensions["redis"]
