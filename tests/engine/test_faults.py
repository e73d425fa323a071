"""Faults with real processes, as an operator meets them: a worker SIGKILLed idle or mid-delivery, Redis restarted.

Each test runs ``python worker.py`` processes against a real Redis and the receiver, then asserts what the
operator would see: every message arrived, none was lost, none arrived under two webhook-ids (a re-run sends
the same one again), each within the promised time, and the request log agrees. Every process a test starts
is stopped by its fixture's ``finally`` (SIGTERM, then SIGKILL). Measured times are printed (``pytest -s``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from rq.job import Job
from rq.registry import StartedJobRegistry
from sqlalchemy import text

from tests.conftest import scheduled_in
from tests.lifecycle import log_entries, send
from webapp.core import keys
from webapp.core.embedded_redis import free_port, start_embedded_redis
from webapp.core.extensions import db
from webapp.models import SentryApp

ROOT = Path(__file__).resolve().parent.parent.parent

# Small workers: 1 periodic + 1 mail + 1 retry + 4 first-attempt slots each.
WORKER_SETTINGS = {"WORKER_CONCURRENCY": 4, "MAIL_CONCURRENCY": 1}
SLOTS = 7
PASSED_SETTINGS = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "BASE_URL", "WEBHOOK_ALLOW_PRIVATE", "WEBHOOK_TIMEOUT")


def wait_for(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Return the first truthy value of ``predicate()``; fail if none comes within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not true within {timeout:.0f} s")
        time.sleep(interval)


class Workers:
    """Start ``worker.py`` processes (output to a file each, tagged in their environment); kill them all at the end."""

    def __init__(self, settings: dict, log_dir: Path):
        self.settings = settings
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen] = []
        self.markers: dict[int, str] = {}
        self.logs: dict[int, Path] = {}

    def start(self, **overrides) -> subprocess.Popen:
        env = dict(os.environ)
        env.update({name: str(self.settings[name]) for name in PASSED_SETTINGS})
        env.update({name: str(value) for name, value in {**WORKER_SETTINGS, **overrides}.items()})
        marker = uuid.uuid4().hex
        env["HOOKLINE_TEST_PROCESS"] = marker  # inherited by anything the worker forks
        log = self.log_dir / f"worker-{len(self.processes)}.log"
        with log.open("w") as out:
            process = subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=env, stdout=out,
                                       stderr=subprocess.STDOUT, cwd=ROOT)
        self.processes.append(process)
        self.markers[process.pid] = marker
        self.logs[process.pid] = log
        return process

    def output(self, process: subprocess.Popen) -> str:
        return self.logs[process.pid].read_text()

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@pytest.fixture
def workers(settings, tmp_path):
    started = Workers(settings, tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


def slots_registered(redis, process: subprocess.Popen) -> int:
    """Return how many of the process's slots are registered RQ workers (named ``<host>.<pid>.<slot>.<hex>``)."""
    return sum(1 for name in redis.smembers("rq:workers") if f".{process.pid}.".encode() in name
               and redis.exists(name))


def wait_ready(redis, process: subprocess.Popen, workers: Workers, timeout: float = 20) -> None:
    try:
        wait_for(lambda: slots_registered(redis, process) >= SLOTS, timeout, what=f"worker {process.pid} ready")
    except AssertionError:
        raise AssertionError(f"worker {process.pid} not ready; output:\n{workers.output(process)}") from None


def children_of(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def processes_from(pid: int, marker: str) -> list[int]:
    """Return live processes that are children of ``pid`` or carry its environment marker (forked by it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile, or not ours to read
        if parent == pid or f"HOOKLINE_TEST_PROCESS={marker}".encode() in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


class Arrivals:
    """What reached the receiver for this test's app, oldest first.

    The receiver's port is shared by the session and may once have been another run's: a worker of that run
    retrying to it must not count here, so requests are told apart by the app's installation.
    """

    def __init__(self, app, app_id: int, receiver):
        with app.app_context():
            self.installation = db.session.get(SentryApp, app_id).installation.uuid
        self.receiver = receiver

    def __call__(self) -> list:
        return [received for received in list(self.receiver.received)
                if self._installation_of(received) == self.installation]

    def ids(self) -> list[str]:
        return [received.headers["Webhook-Id"] for received in self()]

    @staticmethod
    def _installation_of(received) -> str | None:
        try:
            return received.json["installation"]["uuid"]
        except (ValueError, KeyError, TypeError):
            return None


@pytest.fixture
def arrivals(app, pager, receiver) -> Arrivals:
    return Arrivals(app, pager, receiver)


# 1. A worker SIGKILLed while idle: nothing to recover, nothing left behind; the other worker carries on.

@pytest.mark.parametrize("second", ["started_before", "started_after"])
def test_sigkill_of_an_idle_worker_leaves_nothing_behind_and_the_other_worker_delivers(
        app, pager, receiver, arrivals, workers, second):
    redis = app.extensions["redis"]
    receiver.answer(200)
    victim = workers.start()
    wait_ready(redis, victim, workers)
    other = None
    if second == "started_before":
        other = workers.start()
        wait_ready(redis, other, workers)
    assert children_of(victim.pid) == [], "the worker forked a child (RQ's scheduler?)"

    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=5)
    assert processes_from(victim.pid, workers.markers[victim.pid]) == []

    if other is None:
        other = workers.start()
    started = time.monotonic()
    ids = send(app, pager, 6)
    wait_for(lambda: len(arrivals()) >= 6, 20, what="6 deliveries")
    elapsed = time.monotonic() - started
    time.sleep(1.0)  # a duplicate would arrive now
    print(f"\n[idle kill, second worker {second}] 6 deliveries in {elapsed:.1f} s")
    assert sorted(arrivals.ids()) == sorted(ids)
    assert all(received.sentry_signature_ok for received in arrivals())
    assert elapsed < (4.0 if second == "started_before" else 10.0), f"took {elapsed:.1f} s"
    assert sorted(entry["response_code"] for entry in log_entries(app, pager)) == [200] * 6
    assert other.poll() is None, workers.output(other)


# 2. A worker SIGKILLed mid-delivery: RQ sees its job abandoned (heartbeat TTL = job timeout + 15 s) and re-runs it
# through the job's Retry (10 s), on the surviving worker, with the same webhook-id.

def test_sigkill_of_a_busy_worker_redelivers_the_message_under_the_same_webhook_id(
        app, settings, pager, receiver, arrivals, workers):
    redis = app.extensions["redis"]
    app.config["WEBHOOK_TIMEOUT"] = 5.0  # the job's timeout (15 s) and heartbeat TTL (30 s) follow from it
    receiver.answer(200, delay=3)  # holds the request: the worker is killed while it waits
    first, second = workers.start(WEBHOOK_TIMEOUT=5), workers.start(WEBHOOK_TIMEOUT=5)
    wait_ready(redis, first, workers)
    wait_ready(redis, second, workers)

    [webhook_id] = send(app, pager, 1)
    wait_for(arrivals, 10, what="the first attempt")
    [job_id] = StartedJobRegistry(keys.WEBHOOK_QUEUE, connection=redis).get_job_ids()
    holder_pid = int(Job.fetch(job_id, connection=redis).worker_name.split(".")[-3])
    holder, survivor = (first, second) if holder_pid == first.pid else (second, first)
    assert holder.pid == holder_pid
    holder.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    holder.wait(timeout=5)
    receiver.answer(200)  # the receiver recovers; the re-run need not wait 3 s

    wait_for(lambda: len(arrivals()) >= 2, 120, interval=0.2, what="the re-delivery")
    elapsed = time.monotonic() - killed
    time.sleep(1.0)  # a third arrival would come now
    print(f"\n[busy kill] re-delivered {elapsed:.1f} s after the kill")
    assert arrivals.ids() == [webhook_id, webhook_id]
    assert all(received.sentry_signature_ok for received in arrivals())
    assert elapsed < 60, f"re-delivery took {elapsed:.1f} s"
    [entry] = log_entries(app, pager)  # the killed attempt wrote nothing; the re-run wrote its success
    assert entry["response_code"] == 200
    assert wait_for(lambda: Job.fetch(job_id, connection=redis).get_status() == "finished", 5, what="job finished")
    assert survivor.poll() is None, workers.output(survivor)


# 3. Redis restarted under a running worker: the worker waits, reconnects, and nothing queued or scheduled is lost.

class RestartableRedis:
    """A redis-server of the test's own (append-only file), stopped and started again on the same port and dir."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.port = free_port()
        self.url, self.process = start_embedded_redis(data_dir, persist=True, port=self.port)

    def stop(self) -> None:
        self.process.terminate()  # SIGTERM: Redis flushes the append-only file and exits
        self.process.wait(timeout=10)

    def start(self) -> None:
        self.url, self.process = start_embedded_redis(self.data_dir, persist=True, port=self.port)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)


@pytest.fixture
def restartable_redis(tmp_path):
    server = RestartableRedis(tmp_path / "redis")
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def settings(settings, request):
    """The shared settings, on the test's own Redis when it asks for ``restartable_redis``."""
    if "restartable_redis" in request.fixturenames:
        settings["REDIS_URL"] = request.getfixturevalue("restartable_redis").url
    return settings


def test_redis_restart_the_worker_reconnects_and_loses_nothing(
        app, pager, receiver, arrivals, workers, restartable_redis):
    """Redis stops (SIGTERM, append-only file) for 3 s with a retry scheduled and a delivery in flight.

    The worker stays up and reconnects: deliveries queued after the restart go out within seconds, the retry
    that fell due during the outage runs at once, and the delivery whose bookkeeping Redis missed is re-run
    (RQ's abandoned job, then its Retry) under the same webhook-id. Then it stops cleanly on SIGTERM.
    """
    redis = app.extensions["redis"]
    assert app.config["REDIS_URL"] == restartable_redis.url
    app.config.update(WEBHOOK_TIMEOUT=3.0, WEBHOOK_RETRY_SCHEDULE=(2.0,))
    receiver.answer(200)
    worker = workers.start(WEBHOOK_TIMEOUT=3, WEBHOOK_RETRY_SCHEDULE="2")
    wait_ready(redis, worker, workers)
    before = send(app, pager, 2)
    wait_for(lambda: len(arrivals()) >= 2, 5, what="deliveries before the restart")

    receiver.answer(503)
    [retried] = send(app, pager, 1)
    [due_in] = wait_for(lambda: scheduled_in(app), 5, what="the retry scheduled")
    receiver.answer(200, delay=1.5)  # holds the next request while Redis goes away
    [in_flight] = send(app, pager, 1)
    wait_for(lambda: in_flight in arrivals.ids(), 5, what="the delivery in flight")
    job_started = time.monotonic()

    restartable_redis.stop()
    receiver.answer(200)
    time.sleep(3.0)
    assert due_in < 3.0  # the retry fell due while Redis was down
    assert worker.poll() is None, workers.output(worker)
    restartable_redis.start()
    back = time.monotonic()

    after = send(app, pager, 4)
    queued = time.monotonic()
    wait_for(lambda: set(after) <= set(arrivals.ids()), 15, interval=0.1, what="deliveries after the restart")
    delivered_after = time.monotonic() - queued
    wait_for(lambda: arrivals.ids().count(retried) >= 2, 30, interval=0.1, what="the retry")
    retry_after = time.monotonic() - back
    # Its job timeout is 13 s, so it is abandoned 28 s after it started; then its Retry waits 10 s.
    wait_for(lambda: arrivals.ids().count(in_flight) >= 2, 60, interval=0.2,
             what="the re-run of the delivery in flight")
    rerun_after = time.monotonic() - job_started
    time.sleep(1.0)  # a duplicate would arrive now
    print(f"\n[redis restart] new deliveries {delivered_after:.1f} s after queueing; retry {retry_after:.1f} s "
          f"after Redis came back; the delivery in flight re-run {rerun_after:.1f} s after it started")

    assert sorted(arrivals.ids()) == sorted(before + [retried, retried, in_flight, in_flight] + after)
    assert all(received.sentry_signature_ok for received in arrivals())
    assert delivered_after < 10, f"deliveries after the restart took {delivered_after:.1f} s"
    codes = sorted((entry["attempt"], entry["response_code"]) for entry in log_entries(app, pager))
    assert codes == [(1, 200)] * 7 + [(1, 503), (2, 200)]  # the attempt whose record Redis missed: logged once
    assert worker.poll() is None, workers.output(worker)
    stopping = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0, workers.output(worker)
    stopped_in = time.monotonic() - stopping
    output = workers.output(worker)
    assert "Exception in thread" not in output, output  # every slot outlived the outage
    assert "Timeout reading from socket" not in output, output  # no slot blocks on a short-timeout connection
    assert stopped_in < 5, f"SIGTERM took {stopped_in:.1f} s with no job in flight\n{output}"


def test_sigterm_while_redis_is_down_stops_the_worker_at_once(
        app, pager, receiver, arrivals, workers, restartable_redis):
    """An operator stopping workers during a Redis outage: a delivery the outage cut short does not hold the stop."""
    redis = app.extensions["redis"]
    app.config["WEBHOOK_TIMEOUT"] = 3.0
    receiver.answer(200, delay=1.0)
    worker = workers.start(WEBHOOK_TIMEOUT=3)
    wait_ready(redis, worker, workers)
    [in_flight] = send(app, pager, 1)
    wait_for(lambda: in_flight in arrivals.ids(), 5, what="the delivery in flight")
    restartable_redis.stop()
    try:
        wait_for(lambda: "worker.slot_error" in workers.output(worker), 10, what="the cut-short delivery's slot error")
        stopping = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, workers.output(worker)
        stopped_in = time.monotonic() - stopping
    finally:
        restartable_redis.start()  # the app fixture empties it at the end
    print(f"\n[SIGTERM during a Redis outage] stopped in {stopped_in:.1f} s")
    assert stopped_in < 5, f"SIGTERM took {stopped_in:.1f} s with no job in flight\n{workers.output(worker)}"


# 4. The database going away (PostgreSQL only).

def test_postgresql_dropping_the_workers_connections_loses_nothing(app, settings, pager, receiver, arrivals, workers):
    """PostgreSQL ends every connection of the worker (as a restart or a failover does): the next jobs still run.

    A server that stays away cannot be simulated on a shared CI database; ending its backends is what the
    worker meets when it comes back, and the pool's pre-ping must replace them rather than fail jobs.
    """
    if not settings["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("needs DATABASE_URL=postgresql://...: SQLite has no server to go away")
    redis = app.extensions["redis"]
    receiver.answer(200)
    worker = workers.start()
    wait_ready(redis, worker, workers)
    before = send(app, pager, 2)
    wait_for(lambda: len(arrivals()) >= 2, 5, what="deliveries before the connections were dropped")

    with app.app_context():
        with db.engine.connect() as connection:
            ended = connection.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    assert ended >= 1  # the worker's pooled connections (and the test's own idle ones)

    started = time.monotonic()
    after = send(app, pager, 4)
    wait_for(lambda: len(arrivals()) >= 6, 20, interval=0.1, what="deliveries after the connections were dropped")
    elapsed = time.monotonic() - started
    time.sleep(1.0)  # a duplicate would arrive now
    print(f"\n[postgresql connections dropped] 4 deliveries in {elapsed:.1f} s")
    assert sorted(arrivals.ids()) == sorted(before + after)
    assert elapsed < 5, f"took {elapsed:.1f} s"
    assert sorted(entry["response_code"] for entry in log_entries(app, pager)) == [200] * 6
    assert worker.poll() is None, workers.output(worker)
    assert "Traceback" not in workers.output(worker), workers.output(worker)


# 5. A flapping receiver (each message's first attempt fails): every message gets through under one webhook-id.

def test_a_flapping_receiver_gets_every_message_under_one_webhook_id_each(app, pager, receiver, arrivals, workers):
    from werkzeug import Response

    redis = app.extensions["redis"]
    attempts: dict[str, int] = {}

    def flapping(request):  # down, up, down, up...: each message's first attempt fails, its retry succeeds
        received = receiver._check(request)
        receiver.received.append(received)
        message_id = request.headers.get("webhook-id", "")
        attempts[message_id] = attempts.get(message_id, 0) + 1
        ok = attempts[message_id] % 2 == 0
        return Response('{"ok": true}' if ok else "busy", status=200 if ok else 503, content_type="application/json")

    receiver.server.clear_all_handlers()
    receiver.server.expect_request("/hook", method="POST").respond_with_handler(flapping)
    worker = workers.start(WEBHOOK_RETRY_SCHEDULE="1,1,1,1")
    wait_ready(redis, worker, workers)
    started = time.monotonic()
    ids = send(app, pager, 10)

    def delivered() -> set[str]:
        return {entry["request_id"] for entry in log_entries(app, pager) if entry["response_code"] == 200}

    wait_for(lambda: len(delivered()) >= 10, 30, what="10 successful deliveries")
    elapsed = time.monotonic() - started
    time.sleep(1.5)  # a stray extra attempt would arrive now
    print(f"\n[flapping receiver] 10 messages delivered in {elapsed:.1f} s, {len(arrivals())} attempts")
    assert sorted(arrivals.ids()) == sorted(ids * 2)  # each message twice (503, then 200), never under a new id
    successes = [entry for entry in log_entries(app, pager) if entry["response_code"] == 200]
    assert len(successes) == 10  # each message succeeded exactly once: no attempt after its success
    assert not any(entry.get("delivery_failed") for entry in log_entries(app, pager))
    assert worker.poll() is None, workers.output(worker)


# 6. A worker SIGKILLed while it runs a fan-out (one change to six apps through a runner job): every app still gets
# the message, each under one webhook-id; the one being sent when the worker died is re-run.

def test_sigkill_of_a_worker_running_a_fan_out_loses_no_app_s_message(app, settings, receiver, workers, make_user):
    from sqlalchemy import select

    from webapp.apps.internal_apps import register_internal_app
    from webapp.dispatch.fanout import notify_resource_change
    from webapp.models import Organization

    redis = app.extensions["redis"]
    app.config["WEBHOOK_TIMEOUT"] = 5.0
    make_user("owner@example.com", "acme", "owner")
    paths = [f"/fan-{uuid.uuid4().hex[:6]}/{index}" for index in range(6)]
    with app.app_context():
        organization = db.session.scalar(select(Organization).where(Organization.slug == "acme"))
        apps = [register_internal_app(organization, f"App {index}", receiver.url(path), ["issue"])
                for index, path in enumerate(paths)]
        app_ids = [sentry_app.id for sentry_app in apps]
        organization_id = organization.id
    receiver.server.clear_all_handlers()
    for path in paths:
        receiver.respond(path=path, delay=3)  # holds each request: a worker is killed while it waits
    first, second = workers.start(WEBHOOK_TIMEOUT=5), workers.start(WEBHOOK_TIMEOUT=5)
    wait_ready(redis, first, workers)
    wait_ready(redis, second, workers)

    with app.app_context():
        job_ids = notify_resource_change(organization_id, "issue.created", {"issue": {"id": "1", "title": "fan"}})
        db.session.commit()
    wait_for(lambda: any(receiver.at(path) for path in paths), 10, what="a first attempt")

    def runner():  # the runner job in flight (it is sending the delivery it took; the others went one job each)
        registry = StartedJobRegistry(keys.WEBHOOK_QUEUE, connection=redis)
        return next((job for job in Job.fetch_many(registry.get_job_ids(), connection=redis)
                     if job and job.func_name.endswith("run_fanout")), None)

    runner_pid = int(wait_for(runner, 5, what="the runner in flight").worker_name.split(".")[-3])
    holder = first if runner_pid == first.pid else second
    survivor = second if holder is first else first
    holder.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    holder.wait(timeout=5)
    receiver.server.clear_all_handlers()
    for path in paths:
        receiver.respond(path=path)  # the receivers recover; re-runs need not wait

    def delivered() -> int:
        return sum(any(entry["response_code"] == 200 for entry in log_entries(app, app_id)) for app_id in app_ids)

    wait_for(lambda: delivered() == len(app_ids), 120, interval=0.2, what="every app's delivery")
    elapsed = time.monotonic() - killed
    time.sleep(1.0)  # a stray extra attempt would arrive now
    print(f"\n[fan-out kill] every app delivered {elapsed:.1f} s after the kill")
    for path in paths:
        ids = {received.headers["Webhook-Id"] for received in receiver.at(path)}
        assert len(ids) == 1, f"{path} got {ids}"  # re-runs send the same webhook-id
    for app_id in app_ids:  # the killed attempts wrote nothing; each app's log has its one success
        assert [entry["response_code"] for entry in log_entries(app, app_id)] == [200]
    # About 40 s: a claim lasts the delivery's time limit + 15 s, then RQ's clean-up and the crash retry (10 s). Up
    # to a minute more when the killed worker held the maintenance and scheduler locks (30 s and 10 s to lapse).
    assert elapsed < 120, f"took {elapsed:.1f} s"
    assert {Job.fetch(job_id, connection=redis).get_status() for job_id in job_ids} == {"finished"}
    assert survivor.poll() is None, workers.output(survivor)
