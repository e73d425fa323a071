"""Run one Hookline worker process: WORKER_CONCURRENCY deliveries in flight, mail, retries and the minute tick.

    python worker.py            # work until stopped (SIGTERM/SIGINT let the jobs in flight finish)
    python worker.py --burst    # empty the queues, then exit
    python worker.py --verbose  # also log every job RQ starts and finishes

It waits for Redis and the database when they do not answer (a restart, a blip) and carries on when they
come back; it exits non-zero only on a configuration error (2: a bad setting, Redis older than 6.2, no room in
Redis's maxclients or the open-file limit for WORKER_CONCURRENCY), or with
--burst when they are down (1).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from webapp import ConfigError, create_app
from webapp.core.extensions import db
from webapp.dispatch.engine import WorkerProcess, capacity_problem

logger = logging.getLogger("hookline.worker")

SERVICE_WAIT_SECONDS = 2.0


# RQ dequeues recoverably (BLMOVE into an intermediate list) only from Redis 6.2 on; older ones pop with BLPOP.
MIN_REDIS_VERSION = (6, 2)


def redis_too_old(app) -> str | None:
    """Return why the Redis server cannot be used (a version without BLMOVE), or None."""
    return redis_version_problem(app.extensions["redis"].info("server").get("redis_version", "0"),
                                 app.config["REDIS_URL"])


def redis_version_problem(version: str, url: str) -> str | None:
    parts = tuple(int(part) for part in str(version).split(".")[:2] if part.isdigit())
    if parts < MIN_REDIS_VERSION:
        return (f"Redis at {url} is {version}; Hookline needs 6.2 or newer, whose BLMOVE lets a worker take a "
                f"job without losing it if the worker dies")
    return None


def check_services(app) -> str | None:
    """Return why the worker cannot work now (Redis or the database not answering), or None."""
    try:
        app.extensions["redis"].ping()
    except RedisError as exc:
        return f"cannot reach Redis at {app.config['REDIS_URL']}: {exc}"
    with app.app_context():
        try:
            db.session.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            return f"cannot reach the database: {exc.__class__.__name__}: {exc.orig or exc}"
        finally:
            db.session.remove()
    return None


def wait_for_services(app) -> None:
    """Block until Redis and the database answer, saying once what is awaited."""
    problem = check_services(app)
    said = None
    while problem:
        if problem != said:
            logger.warning("waiting: %s (retrying every %.0fs)", problem, SERVICE_WAIT_SECONDS)
            said = problem
        time.sleep(SERVICE_WAIT_SECONDS)
        problem = check_services(app)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Hookline's worker process.")
    parser.add_argument("--burst", action="store_true", help="empty the queues, then exit")
    parser.add_argument("--name", help="worker process name (defaults to <host>.<pid>)")
    parser.add_argument("--verbose", action="store_true", help="log every job RQ runs, not only Hookline's own lines")
    args = parser.parse_args(argv)
    try:
        app = create_app()
    except ConfigError as exc:
        print(f"hookline worker: {exc}", file=sys.stderr)
        return 2
    if args.burst:
        problem = check_services(app)
        if problem:
            print(f"hookline worker: {problem}", file=sys.stderr)
            return 1
    else:
        try:
            wait_for_services(app)
        except KeyboardInterrupt:
            return 0
    problem = redis_too_old(app) or capacity_problem(app.config, app.extensions["redis"])
    if problem:
        print(f"hookline worker: {problem}", file=sys.stderr)
        return 2
    return WorkerProcess(app, burst=args.burst, verbose=args.verbose, name=args.name).run()


if __name__ == "__main__":
    sys.exit(main())
