"""Hookline: signed webhooks for alerts, a request log, and an owner's dashboard."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from .core.config import PROJECT_ROOT, ConfigError, instance_secret_key, load_settings
from .core.input_guard import MAX_ROW_ID

__all__ = ["ConfigError", "create_app"]

DATABASE_CONNECT_TIMEOUT = 5  # seconds a PostgreSQL connect may take (unless DATABASE_URL sets connect_timeout)


def __getattr__(name: str):
    """``webapp.account_jobs``: jobs queued by a release before the accounts package are named
    ``webapp.account_jobs.<function>``; RQ, failing to import that module, looks the name up here."""
    if name == "account_jobs":
        from .accounts import jobs

        return jobs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class DatabaseIdConverter(IntegerConverter):
    """``<int:...>`` in a URL: every one is a row id, so a number beyond the database's integers matches no route
    (404) instead of reaching PostgreSQL, which refuses it with an error (SQLite would just find no row)."""

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_ROW_ID, signed=False):  # noqa: A002 - Werkzeug's names
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def create_app(config: dict | None = None) -> Flask:
    """Build the Flask app: settings, extensions, Redis, blueprints, CLI commands."""
    app = Flask(__name__, static_folder=str(PROJECT_ROOT / "static"), instance_path=str(PROJECT_ROOT / "instance"))
    app.url_map.converters["int"] = DatabaseIdConverter  # before any route is added
    # Any whole number: ingestion answers an SDK's unknown project with 403 "Unknown project", as Sentry does.
    app.url_map.converters["number"] = IntegerConverter
    settings = load_settings(config)
    os.makedirs(app.instance_path, exist_ok=True)
    if settings["DATABASE_URL"] is None:
        settings["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'hookline.db'}"
    if settings["SECRET_KEY"] is None:
        settings["SECRET_KEY"] = instance_secret_key(Path(app.instance_path))
    app.config.update(settings)
    app.config["SQLALCHEMY_DATABASE_URI"] = settings["DATABASE_URL"]
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options(settings))
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # tokens live as long as the session
    # Flask and Flask-Login define these keys already, so setdefault would leave their defaults in place.
    secure = settings["BASE_URL"].startswith("https://")
    for name, value in {"SESSION_COOKIE_SAMESITE": "Lax", "SESSION_COOKIE_SECURE": secure,
                        "REMEMBER_COOKIE_SAMESITE": "Lax", "REMEMBER_COOKIE_SECURE": secure,
                        "MAX_CONTENT_LENGTH": settings["REQUEST_MAX_BYTES"]}.items():
        if name not in settings:  # a value given to create_app wins
            app.config[name] = value
    if settings["TRUSTED_PROXIES"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings["TRUSTED_PROXIES"])

    from . import cli
    from .core import cache, input_guard, outages, redis_store, web_protections  # noqa: F401  (cache: invalidation listeners)
    from .core.extensions import csrf, db, login_manager, mail, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).parent / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    mail.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Log in to see that page."
    redis_store.init_app(app)
    cli.init_app(app)
    outages.init_app(app)
    web_protections.init_app(app)
    input_guard.init_app(app)  # after CSRF's check: a forged form is refused as forged

    from .core import templating
    from .views import (
        account, api, apps, auth, errors, health, incidents, ingest, invitations, issues, members, orgs, passwords,
        project_keys, projects, request_log,
    )

    for blueprint in (ingest.bp, api.bp, account.bp, auth.bp, apps.bp, request_log.bp, projects.bp, project_keys.bp,
                      issues.bp, incidents.bp, orgs.bp, health.bp, members.bp, invitations.bp, passwords.bp):
        app.register_blueprint(blueprint)

    if app.config["DEMO_MAILBOX"]:
        from .views import demo_outbox

        app.register_blueprint(demo_outbox.bp)

    errors.init_app(app)
    templating.init_app(app)
    _configure_logging(app)
    return app


def _configure_logging(app: Flask) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


from .core.extensions import login_manager  # noqa: E402


@login_manager.user_loader
def _load_user(session_id: str):
    """The user a session names, if its session token is still current (logout ends it everywhere)."""
    import hmac

    from .core.extensions import db
    from .models import User

    user_id, _, token = session_id.partition(":")
    if not user_id.isdigit() or not token:  # a cookie from before session tokens: log in again
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not hmac.compare_digest(user.session_token.encode(), token.encode()):
        return None
    return user


def engine_options(settings) -> dict:
    """SQLAlchemy's engine options for these settings: the pool sized to a worker's slots, connects bounded."""
    # A worker process may use a database connection in each slot at once (the slot plan: deliveries, retries,
    # mail, the tick), and the organisations' gate a few more; connections open only when used, and a delivery
    # gives its connection back while it waits for the receiver.
    slots = settings["WORKER_CONCURRENCY"] + max(1, settings["WORKER_CONCURRENCY"] // 4) + settings["MAIL_CONCURRENCY"] + 1
    options = {
        "pool_size": slots + 2, "max_overflow": 8,
        # A connection a database server dropped (a restart) is replaced, not handed to a job. A SQLite file has
        # no server to drop it: the ping would only cost every session a statement.
        "pool_pre_ping": not settings["DATABASE_URL"].startswith("sqlite"),
    }
    if settings["DATABASE_URL"].startswith("postgresql") and "connect_timeout" not in settings["DATABASE_URL"]:
        # A server that does not answer (a partition, a dead host) fails a connect in seconds, not the system's
        # two minutes: a worker's batches share one thread (dispatch/hub.py), which must not wait that long.
        options["connect_args"] = {"connect_timeout": DATABASE_CONNECT_TIMEOUT}
    return options
