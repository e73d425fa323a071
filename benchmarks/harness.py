"""Processes and measuring tools for benchmarks/run.py: receiver, workers, gunicorn, counters."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import redis
import requests
from rq import Queue, Worker
from rq.registry import FinishedJobRegistry, StartedJobRegistry

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def start_gunicorn(app: str, port: int, env: dict, workers: int = 1, threads: int = 1) -> subprocess.Popen:
    worker_class = ["--worker-class", "gthread", "--threads", str(threads)] if threads > 1 else []
    process = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers), *worker_class,
         "--log-level", "warning", "--chdir", str(ROOT), app],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_http(f"http://127.0.0.1:{port}/")
    return process


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def running_workers(count: int, env: dict, connection: redis.Redis):
    """Start ``count`` `python worker.py` processes and wait until all have registered with RQ."""
    before = len(Worker.all(connection=connection))
    processes = [subprocess.Popen([PYTHON, str(ROOT / "worker.py")], env=env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(count)]
    deadline = time.monotonic() + 30
    while len(Worker.all(connection=connection)) < before + count:
        if time.monotonic() > deadline:
            stop(processes)
            raise RuntimeError("workers did not start")
        time.sleep(0.05)
    try:
        yield processes
    finally:
        stop(processes)
        time.sleep(0.2)


def wait_finished(connection: redis.Redis, queue_name: str, expected: int, timeout: float = 600) -> float:
    """Wait until ``expected`` jobs of the queue have finished; return the time that took, from now."""
    started = time.perf_counter()
    finished = FinishedJobRegistry(queue_name, connection=connection)
    running = StartedJobRegistry(queue_name, connection=connection)
    queue = Queue(queue_name, connection=connection)
    while True:
        if finished.count >= expected:
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"only {finished.count}/{expected} jobs finished (queued {queue.count}, running {running.count})")
        time.sleep(0.01)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(pct / 100 * (len(ordered) - 1)))))
    return ordered[index]


class RoundTrips:
    """Count Redis round trips (one per packed send: a pipeline is one) and SQL statements in this process."""

    def __init__(self, engine):
        self.redis = 0
        self.sql = 0
        self._engine = engine

    def __enter__(self):
        from redis.connection import Connection
        from sqlalchemy import event

        original = Connection.send_packed_command
        counter = self

        def counting(connection, command, check_health=True):
            counter.redis += 1
            return original(connection, command, check_health)

        self._restore = lambda: setattr(Connection, "send_packed_command", original)
        Connection.send_packed_command = counting

        def on_sql(*args):
            counter.sql += 1

        self._on_sql = on_sql
        event.listen(self._engine, "before_cursor_execute", on_sql)
        return self

    def __exit__(self, *exc):
        from sqlalchemy import event

        self._restore()
        event.remove(self._engine, "before_cursor_execute", self._on_sql)


def env_for(settings: dict) -> dict:
    return {**os.environ, **{key: str(value) for key, value in settings.items()}, "PYTHONPATH": str(ROOT)}
