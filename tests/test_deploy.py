"""deploy/'s Procfile, run by honcho as an operator would: the web server and a worker deliver a test alert.

Runs against the database the tests use (PostgreSQL when DATABASE_URL names one) and the tests' Redis.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from sqlalchemy import select

from tests.conftest import PASSWORD
from webapp.embedded_redis import free_port
from webapp.extensions import db
from webapp.models import SentryApp

ROOT = Path(__file__).resolve().parent.parent


def test_the_procfile_runs_hookline_and_delivers_a_test_alert(app, settings, owner, receiver, tmp_path):
    receiver.answer(200)
    response = owner.post("/orgs/acme/apps/new", {"name": "Pager", "webhook_url": receiver.url(), "issue": "y"})
    assert response.status_code == 302
    with app.app_context():
        receiver.secret = db.session.scalar(select(SentryApp.client_secret).where(SentryApp.slug == "pager"))
        db.session.remove()
    port = free_port()
    env = {**os.environ, **{key: str(value) for key, value in settings.items()},
           "PORT": str(port), "WEB_CONCURRENCY": "1", "BASE_URL": f"http://127.0.0.1:{port}",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "PYTHONUNBUFFERED": "1"}
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

        browser = requests.Session()
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', browser.get(f"{base}/login").text).group(1)
        browser.post(f"{base}/login", data={"email": "owner@example.com", "password": PASSWORD,
                                            "csrf_token": token})
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
    finally:
        os.killpg(honcho.pid, signal.SIGTERM)
        output, _ = honcho.communicate(timeout=60)
    output = output.decode()
    assert "worker.stopped" in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
