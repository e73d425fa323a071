"""Shared fixtures: a real Redis database (flushed), a fresh SQLite file, a CSRF-aware client, a worker."""

from __future__ import annotations

import atexit
import functools
import os
import re
import shutil
import tempfile
import threading
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from flask_migrate import upgrade
from pytest_httpserver import HTTPServer
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import text
from werkzeug.security import generate_password_hash
from werkzeug.serving import make_server

from tests.receiver import Receiver
from webapp import create_app
from webapp.accounts import people
from webapp.accounts.people import create_user
from webapp.core import keys
from webapp.core.embedded_redis import answers, free_port, start_embedded_redis
from webapp.core.extensions import db
from webapp.dispatch.queues import make_worker

pytest_plugins = ["tests.alert_world", "tests.lifecycle"]

# Tests own this Redis database number and flush it; set HOOKLINE_TEST_REDIS_URL to move them. Run in parallel
# (pytest-xdist), each test process owns the next database up (then down): gw0 13, gw1 14, gw2 15, gw3 12, …
TEST_REDIS_URL = os.environ.get("HOOKLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def _own_redis_url(url: str, worker: str) -> str:
    """``url`` with this test process's own database number (``worker``: xdist's gw0, gw1, …, or "")."""
    if not worker.startswith("gw"):
        return url
    base, _, number = url.rpartition("/")
    first = int(number or 0)
    order = [*range(first, 16), *range(first - 1, 0, -1)]
    return f"{base}/{order[int(worker[2:]) % len(order)]}"


TEST_REDIS_URL = _own_redis_url(TEST_REDIS_URL, os.environ.get("PYTEST_XDIST_WORKER", ""))
TEST_REDIS_DB = int(TEST_REDIS_URL.rpartition("/")[2] or 0)
# A fresh SQLite file per test, unless DATABASE_URL names a PostgreSQL database the tests may wipe.
TEST_DATABASE_URL = os.environ.get("DATABASE_URL", "")
PASSWORD = "correct-horse-battery"


# Tests that need the machine to themselves: they time what they measure (p99s, "within a second") or start
# processes that do. In parallel runs (scripts/test) they run afterwards, one at a time.
SERIAL = ("engine/", "dispatch/test_hostile_receivers.py", "test_deploy.py", "test_demo.py",
          "views/test_account_enumeration.py")
# Except these: they mostly wait, with wide bounds (RQ noticing a killed worker, about 40 s of a 60 s bound; Sentinel
# promoting a replica; recovery after a flush), and waiting beside the others keeps the whole run short.
WAITERS = ("engine/test_faults.py::test_sigkill_of_a_busy_worker_",
           "engine/test_faults.py::test_sigkill_of_a_worker_running_a_fan_out",
           "engine/test_sentinel_failover.py::", "engine/test_lost_messages.py::")
# Left out of the quick loop (-m "not slow"): the serial ones, the browser, the fuzzers and hostile-input walks,
# and the worker-process tests.
SLOW = (*SERIAL, "browser/", "api/test_schemathesis.py", "test_ingest_fuzz.py", "test_worker.py",
        "api/test_hostile_api.py", "views/test_hostile_forms.py", "test_durability.py")


def pytest_collection_modifyitems(config, items):
    """Mark the slow and serial tests by where they live, and keep one phase's tests when scripts/test asks
    (HOOKLINE_TEST_PHASE=parallel: all but the serial ones; =serial: only those)."""
    tests_dir = Path(__file__).parent
    phase = os.environ.get("HOOKLINE_TEST_PHASE", "")
    kept, dropped = [], []
    for item in items:
        where = Path(item.fspath).relative_to(tests_dir).as_posix()
        serial = where.startswith(SERIAL) and not f"{where}::{item.name}".startswith(WAITERS)
        if serial:
            item.add_marker(pytest.mark.serial)
        if where.startswith(SLOW):
            item.add_marker(pytest.mark.slow)
        (dropped if (phase == "parallel" and serial) or (phase == "serial" and not serial) else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


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
    url, process = start_embedded_redis(tmp_path_factory.mktemp("redis"), persist=False, db=TEST_REDIS_DB)
    yield url
    process.terminate()
    process.wait(timeout=10)


class SMTPRecorder:
    """A real SMTP server (aiosmtpd) that keeps what it receives."""

    def __init__(self):
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(envelope.content, policy=default_policy))
        return "250 Message accepted for delivery"


@pytest.fixture(scope="session")
def smtp_server():
    recorder = SMTPRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture
def smtp(smtp_server):
    smtp_server.handler.messages.clear()
    smtp_server.handler.envelopes.clear()
    return smtp_server.handler


class Clock:
    """The clock tests drive: ``webapp.core.clock.now`` returns ``current`` until the test moves it."""

    def __init__(self, start: datetime):
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta) -> None:
        self.current += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    fake = Clock(datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc))
    monkeypatch.setattr("webapp.core.clock.now", fake.now)
    return fake


@pytest.fixture
def settings(tmp_path, redis_url, smtp_server):
    """Settings of the app under test; tests may change them before asking for ``app``."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-of-at-least-32-bytes",
        "DATABASE_URL": TEST_DATABASE_URL if TEST_DATABASE_URL.startswith("postgresql") else f"sqlite:///{tmp_path / 'hookline.db'}",
        "REDIS_URL": redis_url,
        "BASE_URL": "http://hookline.test",
        "WEBHOOK_TIMEOUT": "1",
        # Receivers in tests listen on loopback; the SSRF tests switch this off.
        "WEBHOOK_ALLOW_PRIVATE": "1",
        # An app without answers is paused until the housekeeper ends it; the in-process burst workers of the unit
        # tests have no housekeeper. Worker processes (tests/engine) run with the default pause: they are given
        # only the settings they name.
        "WEBHOOK_UNANSWERED_PAUSE": "0",
        # Tests read a finished job's record and result after the run, however loaded the machine: kept an hour, not
        # the default few seconds (jobs queued by a worker process, which is given only the settings it names, keep
        # the default).
        "JOB_RESULT_TTL": "3600",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_server.port),
        "MAIL_DEFAULT_SENDER": "hookline@hookline.test",
        "MAIL_SUPPRESS_SEND": False,
    }


@pytest.fixture
def app(settings):
    app = create_app(settings)
    app.extensions["redis"].flushdb()
    prepare_database(app)
    yield app
    app.extensions["redis"].flushdb()
    close_app(app)


def close_app(app) -> None:
    """Close the app's Redis and database connections now, not when garbage-collected."""
    app.extensions["redis"].close()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def prepare_database(app) -> None:
    """Give ``app`` an empty database at the newest migration.

    A new SQLite file is a copy of one this test process migrated once (running every migration takes a second
    or so, for each of hundreds of tests); PostgreSQL's schema is wiped and migrated each time.
    """
    with app.app_context():
        url = app.config["DATABASE_URL"]
        if url.startswith("postgresql"):
            wipe_postgresql()
            upgrade()
            return
        path = Path(db.engine.url.database)
        if path.exists() and path.stat().st_size:
            upgrade()  # a file a test made on purpose (an older schema, a copy): migrated in place
            return
        db.engine.dispose()
        shutil.copyfile(_migrated_sqlite_template(), path)


@functools.cache
def _migrated_sqlite_template() -> Path:
    """An SQLite file at the newest migration, made once per test process."""
    folder = Path(tempfile.mkdtemp(prefix="hookline-migrated-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    template = folder / "template.db"
    app = create_app({"TESTING": True, "SECRET_KEY": "template-secret-key-of-at-least-32-bytes",
                      "DATABASE_URL": f"sqlite:///{template}", "REDIS_URL": "redis://127.0.0.1:9/0"})
    with app.app_context():
        upgrade()
        db.session.remove()
        db.engine.dispose()
    return template


def wipe_postgresql() -> None:
    """Start each test on an empty schema (only ever on the database DATABASE_URL gave the tests)."""
    with db.engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))


CHEAP_PASSWORD_HASH = "pbkdf2:sha256:1000"  # werkzeug's default (scrypt) costs ~50 ms a hash, twice per login


def _hash_passwords_with(patch: pytest.MonkeyPatch, hasher) -> None:
    """Make new accounts, password changes and the unknown-email check all hash with ``hasher``."""
    patch.setattr("webapp.models.accounts.generate_password_hash", hasher)
    patch.setattr("webapp.accounts.people.generate_password_hash", hasher)
    people._dummy_password_hash.cache_clear()


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing():
    """Hash passwords cheaply: hundreds of tests create people and log in. ``real_password_hashing`` undoes it."""
    def cheap(password, method=CHEAP_PASSWORD_HASH, salt_length=16):
        return generate_password_hash(password, method=method, salt_length=salt_length)

    with pytest.MonkeyPatch.context() as patch:
        _hash_passwords_with(patch, cheap)
        yield
    people._dummy_password_hash.cache_clear()


@pytest.fixture
def real_password_hashing(monkeypatch):
    """Werkzeug's own hashing, for the tests that time or compare what a login costs."""
    _hash_passwords_with(monkeypatch, generate_password_hash)
    yield
    people._dummy_password_hash.cache_clear()


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
    """Serve ``app`` on a free loopback port from a thread; return its base URL.

    Answers are read whole before they are written: werkzeug's development server leaves a static file open
    when the browser drops the connection mid-answer, and the test run treats that ResourceWarning as an error.
    """

    def buffered(environ, start_response):
        answer = app(environ, start_response)
        try:
            return [b"".join(answer)]
        finally:
            if hasattr(answer, "close"):
                answer.close()

    server = make_server("127.0.0.1", 0, buffered, threaded=True)
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


def move_scheduled_jobs(redis) -> list[str]:
    """Move every scheduled job (retries, delayed mails) to its queue as if its time had come; return their ids."""
    moved = []
    for name in keys.ALL_QUEUES:
        registry = ScheduledJobRegistry(name, connection=redis)
        queue = Queue(name, connection=redis)
        for job_id in registry.get_job_ids():
            job = Job.fetch(job_id, connection=redis)
            registry.remove(job)
            if job.has_rate_limit:  # as RQ's scheduler does: through the app's cap
                queue._enqueue_rate_limited_job(job)
            else:
                queue._enqueue_job(job)
            moved.append(job_id)
    return moved


@pytest.fixture
def run_scheduled(app):
    """Let the time of every scheduled job come (see ``move_scheduled_jobs``); return how many moved."""
    return lambda: len(move_scheduled_jobs(app.extensions["redis"]))


def scheduled_in(app, queue_name: str = keys.RETRY_QUEUE) -> list[float]:
    """Return the seconds from now at which each scheduled job of the queue (by default: retries) will run."""
    registry = ScheduledJobRegistry(queue_name, connection=app.extensions["redis"])
    now = datetime.now(timezone.utc)
    return sorted((registry.get_scheduled_time(job_id) - now).total_seconds() for job_id in registry.get_job_ids())
