"""Shared fixtures: a real Redis database (flushed), a fresh SQLite file, a CSRF-aware client, a worker."""

from __future__ import annotations

import os
import re
import threading

import pytest
from flask_migrate import upgrade
from pytest_httpserver import HTTPServer
from werkzeug.serving import make_server

from tests.receiver import Receiver

from webapp import create_app
from webapp.accounts import create_user
from webapp.dispatch.queues import make_worker
from webapp.embedded_redis import answers, start_embedded_redis

pytest_plugins = ["tests.alert_world"]

# Tests own this Redis database number and flush it; set HOOKLINE_TEST_REDIS_URL to move them.
TEST_REDIS_URL = os.environ.get("HOOKLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="session")
def make_httpserver():
    """pytest-httpserver's receiver, threaded: a receiver left hanging by one test cannot stall the next."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    if answers(TEST_REDIS_URL):
        yield TEST_REDIS_URL
        return
    url, process = start_embedded_redis(tmp_path_factory.mktemp("redis"), persist=False, db=13)
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def settings(tmp_path, redis_url):
    """Settings of the app under test; tests may change them before asking for ``app``."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'hookline.db'}",
        "REDIS_URL": redis_url,
        "BASE_URL": "http://hookline.test",
        "WEBHOOK_TIMEOUT": "1",
        # Receivers in tests listen on loopback; the SSRF tests switch this off.
        "WEBHOOK_ALLOW_PRIVATE": "1",
    }


@pytest.fixture
def app(settings):
    app = create_app(settings)
    app.extensions["redis"].flushdb()
    with app.app_context():
        upgrade()
    yield app
    app.extensions["redis"].flushdb()
    app.extensions["redis"].close()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make_user(app):
    def make(email: str = "owner@example.com", org: str = "acme", role: str = "owner"):
        with app.app_context():
            return create_user(email, PASSWORD, org, role).id

    return make


class Session:
    """A test client that logs in and sends the CSRF token the way the pages do."""

    def __init__(self, client):
        self.client = client
        self._token = None

    def csrf_token(self) -> str:
        if self._token is None:
            page = self.client.get("/login").get_data(as_text=True)
            self._token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        return self._token

    def login(self, email: str = "owner@example.com", password: str = PASSWORD):
        return self.post("/login", {"email": email, "password": password})

    def get(self, path, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path, data=None, htmx: bool = False, **kwargs):
        data = {"csrf_token": self.csrf_token(), **(data or {})}
        headers = {"HX-Request": "true"} if htmx else {}
        return self.client.post(path, data=data, headers=headers, **kwargs)


@pytest.fixture
def session(app):
    return Session(app.test_client())


@pytest.fixture
def owner(make_user, session):
    """The owner of org ``acme``, logged in."""
    make_user("owner@example.com", "acme", "owner")
    session.login()
    return session


@pytest.fixture
def receiver(httpserver):
    """A receiver that checks signatures; set ``receiver.secret`` to the app's secret."""
    receiver = Receiver(httpserver)
    yield receiver
    receiver.in_flight.wait_idle()  # a slow answer must not spill into the next test


@pytest.fixture
def live_server(app):
    """Serve ``app`` on a free loopback port from a thread; return its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def run_worker(app):
    """Run RQ's SimpleWorker in burst mode on Hookline's queues: every queued job runs now."""

    def run():
        return make_worker(app).work(burst=True)

    return run
