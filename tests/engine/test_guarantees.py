"""What a user can count on, end to end: a change and its webhooks travel together, a rolled-back change sends
nothing, one app cannot crowd out the others, a test alert is not doubled, a silent SMTP server holds no worker,
and a re-run job re-sends under the same webhook-ids.

Each test runs on a redis-server of its own (started per test), so other test runs sharing the test database
cannot disturb it. Redis faults are real: that server is paused for writes with ``CLIENT PAUSE WRITE`` while the
request runs, with a short socket timeout on the app's client, so the commit-time write fails as it would
against a hung Redis.
"""

from __future__ import annotations

import json
import logging
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager

import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.rate_limit import RateLimitRegistry
from rq.registry import FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import select
from werkzeug import Response

from tests.conftest import scheduled_in
from tests.engine.test_worker_process import ROOT, wait_for
from tests.lifecycle import send
from webapp.accounts.tokens import create_token
from webapp.apps.internal_apps import register_internal_app
from webapp.core import keys
from webapp.core.embedded_redis import start_embedded_redis
from webapp.core.extensions import db
from webapp.core.outbox import sweep_outbox
from webapp.dispatch.fanout import notify_resource_change
from webapp.dispatch.queues import make_worker
from webapp.models import Event, Group, Organization, OutboxJob, find_user_by_email

AUTH = "Sentry sentry_version=7, sentry_client=test/1.0, sentry_key={key}"


# ---------------------------------------------------------------------------------------------- helpers


def envelope(event_id: str, message: str) -> bytes:
    event = {"event_id": event_id, "message": message, "level": "error"}
    data = json.dumps(event).encode()
    return b"\n".join([json.dumps({"event_id": event_id}).encode(),
                       json.dumps({"type": "event", "length": len(data)}).encode(), data])


def ingest(app, world, event_id: str, message: str = "card declined"):
    """POST one event the way an SDK does; return the response."""
    key = world.dsn.split("//")[1].split("@")[0]
    return app.test_client().post(f"/api/{world.project_id}/envelope/", data=envelope(event_id, message),
                                  headers={"X-Sentry-Auth": AUTH.format(key=key)})


def outbox_rows(app) -> list[dict]:
    """The committed jobs still waiting in the outbox to be queued, as their specs."""
    with app.app_context():
        rows = [json.loads(spec) for spec in db.session.scalars(
            select(OutboxJob.spec_json).where(OutboxJob.queued_at.is_(None)).order_by(OutboxJob.id))]
        db.session.remove()
    return rows


def waiting_jobs(app) -> int:
    """Jobs anywhere on their way to a worker: in a queue, held by a rate limit, or scheduled."""
    connection = app.extensions["redis"]
    total = sum(Queue(name, connection=connection).count for name in keys.ALL_QUEUES)
    total += sum(ScheduledJobRegistry(name, connection=connection).count for name in keys.ALL_QUEUES)
    total += sum(registry.get_rate_limited_job_count() for registry in RateLimitRegistry.all(connection))
    return total


def event_ids_sent(receiver, path: str = "/all") -> list[str]:
    return [r.json["data"]["error"]["event_id"] for r in receiver.of("error.created", path)]


def group_status(app, group_id: int) -> str:
    with app.app_context():
        status = db.session.get(Group, group_id).status
        db.session.remove()
    return status


def api_token(app, email: str = "owner@example.com") -> str:
    with app.app_context():
        _, token = create_token(find_user_by_email(email), "guarantees")
        db.session.remove()
    return token


class SilentServer:
    """A TCP server that accepts connections and never says a word (a hung receiver, a silent SMTP server).

    Counts the connections open at once (``max_open``), so a test can tell how many attempts were in flight.
    """

    def __init__(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.open = 0
        self.max_open = 0
        self.accepted = 0
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.listener, selectors.EVENT_READ, "accept")
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            events = self._selector.select(timeout=0.05)
            # Hang-ups first: a client that closed one attempt and opened the next is not two in flight.
            for selector_key, _ in sorted(events, key=lambda event: event[0].data == "accept"):
                if selector_key.data == "accept":
                    self._accept()
                else:
                    self._read(selector_key.fileobj)

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except (BlockingIOError, OSError):
                return
            connection.setblocking(False)
            self._selector.register(connection, selectors.EVENT_READ, "read")
            with self._lock:
                self._connections.add(connection)
                self.accepted += 1
                self.open += 1
                self.max_open = max(self.max_open, self.open)

    def _read(self, connection: socket.socket) -> None:
        try:
            data = connection.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client hung up
            self._selector.unregister(connection)
            connection.close()
            with self._lock:
                self._connections.discard(connection)
                self.open -= 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for connection in list(self._connections):
            connection.close()
        self._selector.close()
        self.listener.close()


def start_worker_logging_to(log, settings, **overrides) -> subprocess.Popen:
    """``python worker.py`` with the test's settings, its output in ``log`` (a pipe could fill and stall it)."""
    env = dict(os.environ)
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "BASE_URL", "WEBHOOK_ALLOW_PRIVATE", "WEBHOOK_TIMEOUT"):
        env[name] = str(settings[name])
    env.update({name: str(value) for name, value in overrides.items()})
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=env, stdout=out,
                                stderr=subprocess.STDOUT, text=True)


@pytest.fixture
def silent_servers():
    servers: list[SilentServer] = []

    def make() -> SilentServer:
        server = SilentServer()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(autouse=True)
def private_redis(settings, tmp_path):
    """Point every test here (and the worker processes it starts) at a redis-server of its own.

    Pausing it touches no one else's Redis, and other test runs flushing or filling the shared test database
    cannot disturb the counts these tests assert. Autouse, so it is set up before ``app``.
    """
    url, process = start_embedded_redis(tmp_path / "private-redis", persist=False, db=0)
    settings["REDIS_URL"] = url
    admin = redis.Redis.from_url(url, socket_timeout=5)
    yield admin
    try:
        admin.execute_command("CLIENT", "UNPAUSE")
    except redis.RedisError:
        pass
    admin.close()
    process.terminate()
    process.wait(timeout=10)


@contextmanager
def redis_writes_hang(app, admin, seconds: float = 8.0, socket_timeout: float = 0.3):
    """While the block runs, Redis accepts connections and reads but every write hangs (CLIENT PAUSE WRITE).

    The app's client gets a short socket timeout for the block (the real one is 5 s), so a write fails fast.
    """
    private_port = admin.connection_pool.connection_kwargs["port"]
    assert f":{private_port}/" in app.config["REDIS_URL"], "never pause the shared Redis"
    client = redis.Redis.from_url(app.config["REDIS_URL"], socket_connect_timeout=1, socket_timeout=socket_timeout)
    client.ping()
    original = app.extensions["redis"]
    app.extensions["redis"] = client
    admin.execute_command("CLIENT", "PAUSE", int(seconds * 1000), "WRITE")
    try:
        with pytest.raises(redis.TimeoutError):  # the fault is real: a write does not get through
            client.set("hookline:probe", 1)
        yield
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")
        app.extensions["redis"] = original
        client.close()
    assert original.get("hookline:probe") is None  # the timed-out write did not land later either


@pytest.fixture
def issue(app, world, receiver, run_worker) -> int:
    """One unresolved issue of project web, its own webhooks already delivered; returns its id."""
    assert ingest(app, world, uuid.uuid4().hex, "card declined").status_code == 200
    run_worker()
    receiver.received.clear()
    [group] = world.groups()
    return group.id


# ---------------------------------------------------------------- 1. commit-then-enqueue: nothing lost, nothing doubled


def test_issue_resolved_while_redis_writes_hang_is_delivered_once_after_the_sweep(
        private_redis, app, world, owner, issue, receiver, run_worker):
    token = api_token(app)
    api = app.test_client()
    put = lambda: api.put(f"/api/0/organizations/acme/issues/{issue}/", json={"status": "resolved"},  # noqa: E731
                          headers={"Authorization": f"Bearer {token}"})

    with redis_writes_hang(app, private_redis):
        started = time.monotonic()
        response = owner.post(f"/orgs/acme/issues/{issue}/status", {"status": "resolved"})
        took = time.monotonic() - started
        assert response.status_code == 303, response.get_data(as_text=True)[:500]
        # The person's impatient second click, and an API client retrying the same change.
        assert owner.post(f"/orgs/acme/issues/{issue}/status", {"status": "resolved"}).status_code == 303
        retried = put()
        assert retried.status_code == 200 and retried.json["status"] == "resolved"
    assert took < 3.0, f"the request took {took:.1f} s while Redis hung"

    assert group_status(app, issue) == "resolved"  # the change is committed ...
    [spec] = outbox_rows(app)  # ... and so is its one webhook, not yet on RQ
    assert spec["func"] == "webapp.dispatch.tasks.deliver_webhook" and spec["args"][1] == "issue.resolved"
    assert waiting_jobs(app) == 0
    run_worker()
    assert receiver.received == []

    with app.app_context():
        assert sweep_outbox() == 0  # the housekeeper's sweep leaves rows younger than 5 s to the commit hook
        assert sweep_outbox(older_than_seconds=0) == 1
    assert outbox_rows(app) == []
    run_worker()
    [resolved] = receiver.of("issue.resolved")
    assert resolved.path == "/all" and resolved.sentry_signature_ok and resolved.standard_webhooks_ok
    assert resolved.json["data"]["issue"]["status"] == "resolved"
    assert resolved.json["actor"]["type"] == "user"

    # The client retries once more, now that Redis is fine: still one webhook.
    assert put().status_code == 200
    assert owner.post(f"/orgs/acme/issues/{issue}/status", {"status": "resolved"}).status_code == 303
    with app.app_context():
        assert sweep_outbox(older_than_seconds=0) == 0
    run_worker()
    assert len(receiver.of("issue.resolved")) == 1 and waiting_jobs(app) == 0


def test_event_ingested_while_redis_writes_hang_is_delivered_once_after_the_sweep(
        private_redis, app, world, receiver, run_worker):
    # An earlier event of the project (the project's key is cached from then on, as in production).
    assert ingest(app, world, uuid.uuid4().hex, "earlier").status_code == 200
    run_worker()
    receiver.received.clear()
    event_id = uuid.uuid4().hex

    with redis_writes_hang(app, private_redis):
        first = ingest(app, world, event_id, "payment gateway down")
        assert first.status_code == 200 and first.json == {"id": event_id}
        duplicate = ingest(app, world, event_id, "payment gateway down")  # the SDK's retry
        assert duplicate.status_code == 200 and duplicate.json == {"id": event_id}

    assert world.event_count() == 2
    [spec] = outbox_rows(app)
    assert spec["func"] == "webapp.dispatch.tasks.post_process_event"
    assert waiting_jobs(app) == 0

    with app.app_context():
        assert sweep_outbox(older_than_seconds=0) == 1
    run_worker()
    assert event_ids_sent(receiver) == [event_id]
    assert [r.json["data"]["issue"]["title"] for r in receiver.of("issue.created")] == ["payment gateway down"]

    assert ingest(app, world, event_id, "payment gateway down").status_code == 200  # once more, Redis fine
    run_worker()
    assert event_ids_sent(receiver) == [event_id] and outbox_rows(app) == [] and waiting_jobs(app) == 0


def test_event_of_a_project_not_in_the_cache_is_accepted_while_redis_writes_hang(
        private_redis, app, world, receiver, run_worker):
    """The project cache is a cache: a write it cannot make must not refuse the event (the SDK drops it on 5xx)."""
    app.extensions["redis"].delete(keys.model_cache("project", world.project_id))
    event_id = uuid.uuid4().hex
    with redis_writes_hang(app, private_redis):
        response = ingest(app, world, event_id)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    with app.app_context():
        assert sweep_outbox(older_than_seconds=0) == 1
    run_worker()
    assert event_ids_sent(receiver) == [event_id]


# ---------------------------------------------------------------- 2. a rolled-back change sends nothing


def test_a_duplicate_event_is_rolled_back_with_its_job(app, world, receiver, run_worker):
    event_id = uuid.uuid4().hex
    assert ingest(app, world, event_id).status_code == 200
    run_worker()
    assert event_ids_sent(receiver) == [event_id]
    receiver.received.clear()

    response = ingest(app, world, event_id)
    assert response.status_code == 200 and response.json == {"id": event_id}
    assert waiting_jobs(app) == 1  # accepted: the worker finds out it is a duplicate
    run_worker()
    assert outbox_rows(app) == [] and waiting_jobs(app) == 0
    with app.app_context():
        assert db.session.scalar(select(Group)).times_seen == 1  # the count was rolled back too
        assert len(db.session.scalars(select(Event)).all()) == 1
        db.session.remove()
    assert receiver.received == []


def test_a_rerun_of_the_ingest_job_stores_and_sends_once(app, world, receiver, run_worker):
    """RQ re-runs a job whose worker died; the ingest job's re-run must not store or send the event twice."""
    connection = app.extensions["redis"]
    queue = Queue(keys.WEBHOOK_QUEUE, connection=connection)
    event_id = uuid.uuid4().hex
    assert ingest(app, world, event_id).status_code == 200
    [job_id] = queue.job_ids
    job = Job.fetch(job_id, connection=connection)
    assert job.func_name == "webapp.dispatch.intake.store_queued_event" and job.args == (world.project_id, event_id)
    payload = connection.get(keys.queued_event(world.project_id, event_id))
    run_worker()
    assert event_ids_sent(receiver) == [event_id]
    receiver.received.clear()

    # The worker died after the commit but before the payload was dropped: the payload is still there.
    connection.set(keys.queued_event(world.project_id, event_id), payload)
    queue.enqueue_job(Job.fetch(job_id, connection=connection))
    run_worker()
    assert world.event_count() == 1 and receiver.received == [] and outbox_rows(app) == []
    assert Job.fetch(job_id, connection=connection).return_value() == "duplicate"


def test_a_change_rolled_back_before_commit_sends_nothing_even_after_a_later_commit(app, world, issue, receiver,
                                                                                   run_worker):
    with app.app_context():
        group = db.session.get(Group, issue)
        group.status = "resolved"
        notify_resource_change(group.project.organization_id, "issue.resolved", {"issue": {"id": str(issue)}})
        db.session.rollback()
        db.session.commit()  # an unrelated, empty commit of the same session
        db.session.remove()
    assert group_status(app, issue) == "unresolved"
    assert outbox_rows(app) == [] and waiting_jobs(app) == 0
    run_worker()
    assert receiver.received == []


# ---------------------------------------------------------------- 3. per-app cap


def test_one_app_has_at_most_four_attempts_queued_or_running(app, pager, receiver):
    app.config["WEBHOOK_APP_CONCURRENCY"] = 4
    connection = app.extensions["redis"]
    registry = RateLimitRegistry(keys.app_rate_limit(pager), connection)
    queue = Queue(keys.WEBHOOK_QUEUE, connection=connection)
    started = StartedJobRegistry(keys.WEBHOOK_QUEUE, connection=connection)
    lock = threading.Lock()
    seen = {"in_flight": 0, "max_in_flight": 0, "max_allowed": 0, "max_queued_or_running": 0}

    def handler(request):
        with lock:
            seen["in_flight"] += 1
            seen["max_in_flight"] = max(seen["max_in_flight"], seen["in_flight"])
        receiver.received.append(receiver._check(request))
        time.sleep(0.3)
        with lock:
            seen["in_flight"] -= 1
        return Response('{"ok": true}', content_type="application/json")

    receiver.server.clear_all_handlers()
    receiver.server.expect_request("/hook", method="POST").respond_with_handler(handler)

    ids = send(app, pager, 10)
    assert registry.get_allowed_job_count() == 4 and registry.get_rate_limited_job_count() == 6
    assert queue.count == 4  # the other six wait for a slot, outside the queue

    stop = threading.Event()

    def sample():
        while not stop.is_set():
            snapshot = connection.pipeline(transaction=True)  # one atomic look at all three
            snapshot.zcard(registry.allowed_key)
            snapshot.llen(queue.key)
            snapshot.zrange(started.key, 0, -1)
            allowed, queued, started_entries = snapshot.execute()
            # A batch's claimed deliveries are marked started while they wait their turn inside the slot of the
            # job that claimed them; the slots themselves are the jobs RQ runs.
            running = [entry for entry in started_entries if b":batch-" not in entry]
            queued_or_running = queued + len(running)
            with lock:
                seen["max_allowed"] = max(seen["max_allowed"], allowed)
                seen["max_queued_or_running"] = max(seen["max_queued_or_running"], queued_or_running)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    deadline = time.monotonic() + 15
    try:
        # Six burst workers at once, more than the cap; a burst worker that finds the queue empty leaves,
        # so start another round until everything is delivered.
        while len(receiver.received) < 10 and time.monotonic() < deadline:
            workers = [threading.Thread(target=make_worker(app).work, kwargs={"burst": True}, daemon=True)
                       for _ in range(6)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(timeout=max(0.1, deadline - time.monotonic()))
    finally:
        stop.set()
        sampler.join(timeout=5)

    assert sorted(r.headers["Webhook-Id"] for r in receiver.received) == sorted(ids)  # all ten, each once
    assert seen["max_in_flight"] <= 4, seen
    assert seen["max_allowed"] <= 4, seen
    assert seen["max_queued_or_running"] <= 4, seen
    assert seen["max_in_flight"] >= 2, seen  # the workers did run in parallel: the cap was what held them
    assert registry.get_allowed_job_count() == 0 and registry.get_rate_limited_job_count() == 0


# ---------------------------------------------------------------- 4. fairness with a real worker process


def attempts_let_in(registry: RateLimitRegistry) -> int:
    """The app's deliveries let in (queued or running), not counting the pause after an attempt without answer."""
    return len([job_id for job_id in registry.get_allowed_job_ids() if job_id != keys.PAUSE_MEMBER])


def test_hung_apps_do_not_delay_a_healthy_app(app, settings, pager, receiver, silent_servers, tmp_path):
    app.config["WEBHOOK_APP_CONCURRENCY"] = 4
    connection = app.extensions["redis"]
    hung = [silent_servers() for _ in range(6)]
    with app.app_context():
        organization = db.session.scalar(select(Organization).where(Organization.slug == "acme"))
        hung_ids = [register_internal_app(organization, f"Hung {n}", server.url(), ["issue"]).id
                    for n, server in enumerate(hung)]
        db.session.remove()
    arrived: dict[str, float] = {}

    def handler(request):
        arrived.setdefault(request.headers.get("webhook-id", ""), time.monotonic())
        receiver.received.append(receiver._check(request))
        return Response('{"ok": true}', content_type="application/json")

    receiver.server.clear_all_handlers()
    receiver.server.expect_request("/hook", method="POST").respond_with_handler(handler)

    log = tmp_path / "worker.log"
    worker = start_worker_logging_to(log, settings, WORKER_CONCURRENCY=16, WEBHOOK_TIMEOUT=2,
                                     WEBHOOK_APP_CONCURRENCY=4)
    registries = [RateLimitRegistry(keys.app_rate_limit(app_id), connection) for app_id in hung_ids]
    max_allowed = [0] * len(hung)
    try:
        wait_for(lambda: connection.keys("rq:worker:*"), 20)
        for app_id in hung_ids:
            send(app, app_id, 10)
        # The first wave fills every first-attempt slot (6 apps x 4 > 16 slots) for WEBHOOK_TIMEOUT ...
        wait_for(lambda: sum(server.open for server in hung) >= 12, 10)
        # ... and once each hung app has timed out, it is down to one attempt at a time (its cap follows its
        # latest answer), leaving the other slots to everyone else.
        wait_for(lambda: all(attempts_let_in(r) <= 1 for r in registries), 15)
        for server in hung:
            server.max_open = server.open
        queued_at = time.monotonic()
        healthy_ids = send(app, pager, 5)
        deadline = queued_at + 10
        while time.monotonic() < deadline and not all(message_id in arrived for message_id in healthy_ids):
            max_allowed = [max(m, attempts_let_in(r)) for m, r in zip(max_allowed, registries)]
            time.sleep(0.05)
        latencies = sorted(arrived.get(message_id, float("inf")) - queued_at for message_id in healthy_ids)
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:  # never leave the process behind
            worker.kill()
            worker.wait(timeout=10)
        output = log.read_text()

    in_flight = [server.max_open for server in hung]  # since the hung apps were down to their reduced cap
    assert all(count <= 1 for count in in_flight), f"hung apps' attempts in flight: {in_flight}"
    assert all(count <= 1 for count in max_allowed), f"hung apps' queued-or-running: {max_allowed}"
    assert "Traceback" not in output, output[-3000:]
    described = ", ".join(f"{t:.2f}" for t in latencies)
    assert latencies[-1] < 1.5, described


# ---------------------------------------------------------------- 5. test alert: one pending per app


def test_test_alert_pressed_twice_while_pending_is_one_job_and_a_later_press_is_another(app, owner, receiver,
                                                                                        run_worker):
    response = owner.post("/orgs/acme/apps/new", {"name": "Receiver", "webhook_url": receiver.url(), "issue": "y"})
    assert response.status_code == 302
    receiver.respond(200)
    token = api_token(app)
    api = app.test_client()

    def press_dashboard() -> str:
        fragment = owner.post("/orgs/acme/apps/receiver/test-alert", htmx=True).get_data(as_text=True)
        return re.search(r'hx-get="[^"]*/test-alert/([0-9a-f]+)"', fragment).group(1)

    def press_api() -> str:
        answer = api.post("/api/0/sentry-apps/receiver/test-alert/", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 202 and answer.json["outcome"] == "queued"
        return answer.json["jobId"]

    first = press_dashboard()
    assert press_dashboard() == first
    assert press_api() == first
    assert owner.post("/orgs/acme/apps/receiver/test-alert").status_code == 302  # without JavaScript
    run_worker()
    assert len(receiver.received) == 1

    second = press_api()
    assert second != first
    assert press_dashboard() == second
    run_worker()
    assert len(receiver.received) == 2
    assert press_dashboard() not in (first, second)


def test_test_alert_double_click_racing_the_first_press_is_one_job(app, owner, receiver, run_worker, monkeypatch):
    response = owner.post("/orgs/acme/apps/new", {"name": "Receiver", "webhook_url": receiver.url(), "issue": "y"})
    assert response.status_code == 302
    receiver.respond(200)
    token = api_token(app)
    import webapp.apps.internal_apps as integrations

    first_is_creating, go_on = threading.Event(), threading.Event()
    real_get_queue = integrations.get_queue

    def slow_get_queue(name):  # the first press's next Redis round trip is slow (a busy Redis, a GC pause)
        if not first_is_creating.is_set():
            first_is_creating.set()
            go_on.wait(5)
        return real_get_queue(name)

    monkeypatch.setattr(integrations, "get_queue", slow_get_queue)
    answers = {}

    def press(name):
        answers[name] = app.test_client().post("/api/0/sentry-apps/receiver/test-alert/",
                                               headers={"Authorization": f"Bearer {token}"}).json["jobId"]

    first = threading.Thread(target=press, args=("first",))
    first.start()
    assert first_is_creating.wait(5)
    release = threading.Timer(0.5, go_on.set)  # the first press carries on half a second later
    release.start()
    try:
        press("second")  # the double click, while the first press is between its two Redis steps
    finally:
        go_on.set()
        release.cancel()
        first.join(timeout=10)
    run_worker()
    assert answers["first"] == answers["second"]
    assert len(receiver.received) == 1


# ---------------------------------------------------------------- 6. a silent SMTP server holds no worker


@pytest.fixture
def silent_smtp(settings, silent_servers) -> SilentServer:
    """An SMTP server that accepts and never sends its greeting; MAIL_TIMEOUT=1. Ask for it before ``app``."""
    server = silent_servers()
    settings.update({"MAIL_PORT": str(server.port), "MAIL_TIMEOUT": "1"})
    return server


def test_silent_smtp_server_fails_the_mail_fast_and_schedules_its_retry(silent_smtp, app, pager, receiver, caplog):
    assert app.config["MAIL_TIMEOUT"] == 1.0 and app.config["MAIL_PORT"] == silent_smtp.port
    connection = app.extensions["redis"]
    receiver.answer(410)  # the receiver says Gone: the app is disabled and its owners are told by email
    send(app, pager)

    started = time.monotonic()
    with caplog.at_level(logging.INFO):
        make_worker(app).work(burst=True)
    took = time.monotonic() - started
    # The operator reads one line saying which server did not answer, not a traceback per attempt.
    [failed] = [record for record in caplog.records if "job.failed" in record.getMessage()]
    assert "send_mail" in failed.getMessage() and f"the SMTP server {app.config['MAIL_SERVER']}:{silent_smtp.port} did not take" in failed.getMessage()
    assert failed.exc_info is None and "Traceback" not in caplog.text

    assert silent_smtp.accepted == 1  # the mail job did reach the server ...
    assert took < 5, f"the worker was held {took:.1f} s by a silent SMTP server"  # ... and gave up in ~1 s
    wait_for(lambda: silent_smtp.open == 0, 2)  # and hung up: nothing left holding a socket
    [retry_in] = scheduled_in(app, keys.MAIL_QUEUE)
    assert 20 < retry_in <= 31  # RQ retries it on the mail schedule (30 s first)
    [job_id] = ScheduledJobRegistry(keys.MAIL_QUEUE, connection=connection).get_job_ids()
    job = Job.fetch(job_id, connection=connection)
    assert job.func_name == "webapp.dispatch.tasks.send_mail" and job.get_status() == "scheduled"
    assert "Fix your Pager integration" in job.args[0]
    assert StartedJobRegistry(keys.MAIL_QUEUE, connection=connection).count == 0
    assert FailedJobRegistry(keys.MAIL_QUEUE, connection=connection).count == 0


# ---------------------------------------------------------------- 7. a re-run job re-sends under the same ids


def test_a_rerun_of_post_process_event_sends_the_same_webhook_ids(app, world, receiver, run_worker):
    connection = app.extensions["redis"]
    queue = Queue(keys.WEBHOOK_QUEUE, connection=connection)
    event_id = uuid.uuid4().hex
    assert ingest(app, world, event_id).status_code == 200

    def sent() -> dict[str, list[str]]:
        return {kind: [r.headers["Webhook-Id"] for r in receiver.of(kind, "/all")]
                for kind in ("issue.created", "error.created")}

    run_worker()
    [job_id] = [job_id for job_id in FinishedJobRegistry(keys.WEBHOOK_QUEUE, connection=connection).get_job_ids()
                if Job.fetch(job_id, connection=connection).func_name == "webapp.dispatch.tasks.post_process_event"]
    first = sent()
    assert all(len(ids) == 1 for ids in first.values()), first
    receiver.received.clear()

    # The same job again, as RQ re-runs it after a crash or as the outbox sweep re-queues it.
    queue.enqueue_job(Job.fetch(job_id, connection=connection))
    run_worker()
    assert sent() == first
    assert event_ids_sent(receiver) == [event_id]
