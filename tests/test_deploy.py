"""deploy/'s Procfile, run by honcho as an operator would: the web server and a worker deliver a test alert.

Runs against the database the tests use (PostgreSQL when DATABASE_URL names one) and the tests' Redis.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import requests
from sqlalchemy import select

from tests.conftest import PASSWORD
from tests.engine.test_worker_process import wait_for
from webapp.accounts.tokens import create_token
from webapp.apps.internal_apps import register_internal_app
from webapp.apps.projects import create_project
from webapp.core.embedded_redis import free_port
from webapp.core.extensions import db
from webapp.models import Organization, SentryApp
from webapp.models.accounts import find_user_by_email

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def running_procfile(settings, **overrides):
    """Run deploy/Procfile with honcho (gunicorn with gunicorn.conf.py, one worker); yield the web server's URL.

    On the way out: SIGTERM to the lot, and the output is checked for a clean stop.
    """
    port = free_port()
    env = {**os.environ, **{key: str(value) for key, value in settings.items()},
           "PORT": str(port), "WEB_CONCURRENCY": "1", "BASE_URL": f"http://127.0.0.1:{port}",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "PYTHONUNBUFFERED": "1",
           **{key: str(value) for key, value in overrides.items()}}
    honcho = subprocess.Popen([sys.executable, "-m", "honcho", "start", "-f", str(ROOT / "deploy" / "Procfile"),
                               "-d", str(ROOT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # ready: the web server answers and the worker's heartbeat is in
            assert honcho.poll() is None and time.monotonic() < deadline, honcho.stdout.read().decode()[-3000:]
            try:
                if requests.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or still loading
                pass
            time.sleep(0.3)
        yield base
    finally:
        os.killpg(honcho.pid, signal.SIGTERM)
        output, _ = honcho.communicate(timeout=60)
    output = output.decode()
    assert "worker.stopped" in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]


def logged_in(base: str, email: str) -> requests.Session:
    browser = requests.Session()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', browser.get(f"{base}/login").text).group(1)
    assert browser.post(f"{base}/login", data={"email": email, "password": PASSWORD,
                                               "csrf_token": token}).status_code == 200
    return browser


def test_the_procfile_runs_hookline_and_delivers_a_test_alert(app, settings, owner, receiver):
    receiver.answer(200)
    response = owner.post("/orgs/acme/apps/new", {"name": "Pager", "webhook_url": receiver.url(), "issue": "y"})
    assert response.status_code == 302
    with app.app_context():
        receiver.secret = db.session.scalar(select(SentryApp.client_secret).where(SentryApp.slug == "pager"))
        db.session.remove()
    with running_procfile(settings) as base:
        browser = logged_in(base, "owner@example.com")
        page = browser.get(f"{base}/orgs/acme/apps/pager")
        assert page.status_code == 200, page.text[:300]
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
        result = browser.post(f"{base}/orgs/acme/apps/pager/test-alert", data={"csrf_token": token})
        assert result.status_code in (200, 303), result.text[:300]
        deadline = time.monotonic() + 15
        while not receiver.of("event_alert.triggered"):
            assert time.monotonic() < deadline, "the worker run by the Procfile did not deliver the test alert"
            time.sleep(0.1)
        [alert] = receiver.of("event_alert.triggered")
        assert alert.sentry_signature_ok and alert.standard_webhooks_ok


BLACK_HOLE_APPS = 30
ROUNDS = 100  # of each request measured: the p99 is the second slowest


def test_test_alerts_at_a_black_hole_never_slow_another_organisation(app, settings, make_user):
    """30 test alerts of one organisation at a receiver that never answers, pressed at once through the API;
    meanwhile another organisation's ingestion and dashboard answer as on an idle server (p99 under 250 ms; two
    web processes, as a small deployment runs)."""
    black_hole = socket.create_server(("127.0.0.1", 0), backlog=4096)  # accepts (the kernel does), never answers
    make_user("owner@example.com", "acme", "owner")
    make_user("other@example.com", "other", "owner")
    with app.app_context():
        acme = db.session.scalar(select(Organization).where(Organization.slug == "acme"))
        slugs = [register_internal_app(acme, f"Pager {index}", f"http://127.0.0.1:{black_hole.getsockname()[1]}/h",
                                       ["issue"]).slug for index in range(BLACK_HOLE_APPS)]
        _, token = create_token(find_user_by_email("owner@example.com"), "presses")
        project = create_project(db.session.scalar(select(Organization).where(Organization.slug == "other")), "Web")
        project_id, key = project.id, project.client_keys[0].public_key
        db.session.remove()
    envelope = (json.dumps({"event_id": "9ec79c33ec9942ab8353589fcb2e04dc"}) + "\n" + json.dumps({"type": "event"})
                + "\n" + json.dumps({"message": "checkout failed", "level": "error"})).encode()
    try:
        with running_procfile(settings, WEBHOOK_TIMEOUT=5, WEB_CONCURRENCY=2) as base:
            other = logged_in(base, "other@example.com")
            ingest = requests.Session()

            def timed(call) -> float:
                started = time.perf_counter()
                response = call()
                assert response.status_code == 200, response.text[:300]
                return (time.perf_counter() - started) * 1000

            def press(slug: str) -> requests.Response:
                return requests.post(f"{base}/api/0/sentry-apps/{slug}/test-alert/", timeout=10,
                                     headers={"Authorization": f"Bearer {token}"})

            def ingest_one() -> requests.Response:
                return ingest.post(f"{base}/api/{project_id}/envelope/", data=envelope, timeout=10,
                                   headers={"X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={key}"})

            for _ in range(3):  # a path's first requests load what it needs (templates, the project's key)
                timed(lambda: other.get(f"{base}/orgs/other/apps"))
                timed(ingest_one)
            ingestion, dashboard = [], []
            with ThreadPoolExecutor(BLACK_HOLE_APPS) as pool:
                pressing = [pool.submit(press, slug) for slug in slugs]  # measured while they are pressed
                for round_ in range(ROUNDS):
                    ingestion.append(timed(ingest_one))
                    dashboard.append(timed(lambda: other.get(f"{base}/orgs/other/apps", timeout=10)))
                    if round_ == 0:  # the rest while the worker holds the attempts open against the black hole
                        wait_for(lambda: black_hole_connections(black_hole) > 0, 10)
                presses = [future.result() for future in pressing]
            assert [answer.status_code for answer in presses] == [202] * BLACK_HOLE_APPS
            waiting = requests.get(base + presses[0].headers["Location"], timeout=10,
                                   headers={"Authorization": f"Bearer {token}"})
            assert waiting.status_code in (200, 202)
    finally:
        black_hole.close()
    shown = f"ingestion {sorted(ingestion)[-5:]}, dashboard {sorted(dashboard)[-5:]} (ms)"
    assert p99(ingestion) < 250 and p99(dashboard) < 250, shown


def p99(values: list[float]) -> float:
    return sorted(values)[int(0.99 * (len(values) - 1))]


def black_hole_connections(server: socket.socket) -> int:
    """Connections waiting in the black hole's accept queue (it never accepts: the kernel queues them)."""
    port = server.getsockname()[1]
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return sum(1 for row in rows if int(row[1].split(":")[1], 16) == port and row[3] == "01")  # ESTABLISHED
