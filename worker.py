"""Run an RQ worker on all of Hookline's queues inside the Flask app context.

    python worker.py            # work until stopped (SIGTERM/SIGINT finish the current job first)
    python worker.py --burst    # empty the queues, then exit
    python worker.py --fork     # fork a work horse per job (slower, isolates each job)
    python worker.py --verbose  # also log every job RQ starts and finishes
"""

from __future__ import annotations

import argparse
import logging
import sys

from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from webapp import ConfigError, create_app
from webapp import keys
from webapp.dispatch.queues import make_worker
from webapp.dispatch.schedule import schedule_metric_alert_tick
from webapp.extensions import db

logger = logging.getLogger("hookline.worker")


def check_services(app) -> str | None:
    """Return why the worker cannot start (Redis or the database not answering), or None."""
    try:
        app.extensions["redis"].ping()
    except RedisError as exc:
        return f"cannot reach Redis at {app.config['REDIS_URL']}: {exc}"
    with app.app_context():
        try:
            db.session.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            return f"cannot reach the database: {exc.__class__.__name__}: {exc.orig or exc}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Hookline's RQ worker.")
    parser.add_argument("--burst", action="store_true", help="empty the queues, then exit")
    parser.add_argument("--fork", action="store_true", help="fork a work horse per job")
    parser.add_argument("--name", help="worker name (defaults to RQ's)")
    parser.add_argument("--verbose", action="store_true", help="log every job RQ runs, not only Hookline's own lines")
    args = parser.parse_args(argv)
    try:
        app = create_app()
    except ConfigError as exc:
        print(f"hookline worker: {exc}", file=sys.stderr)
        return 2
    problem = check_services(app)
    if problem:
        print(f"hookline worker: {problem}", file=sys.stderr)
        return 1
    if not args.burst:
        with app.app_context():
            schedule_metric_alert_tick()
    worker = make_worker(app, keys.ALL_QUEUES, fork=args.fork, name=args.name)
    logger.info("listening on %s", ", ".join(keys.ALL_QUEUES))
    # RQ logs four lines per job at INFO; Hookline logs one line per delivery itself.
    worker.work(burst=args.burst, with_scheduler=True, logging_level="INFO" if args.verbose else "WARNING")
    return 0


if __name__ == "__main__":
    sys.exit(main())
