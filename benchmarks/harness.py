"""Processes and measuring tools for benchmarks/run.py: receiver, workers, gunicorn, waits, counters.

Every wait is bounded and raises ``BenchError`` saying what it was waiting for and how far it got; every
process started here is stopped by the caller's ``finally`` (and, on Linux, gets SIGTERM if the benchmark
itself dies).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import redis
import requests
from rq import Queue
from rq.registry import FinishedJobRegistry, StartedJobRegistry
from rq.worker_registration import get_keys

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


class BenchError(RuntimeError):
    """Something the benchmark waited for did not happen in time (or a process it needs died)."""


try:  # loaded once here: the child runs as little Python as possible between fork and exec
    import ctypes

    _prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl if sys.platform.startswith("linux") else None
except (OSError, AttributeError):
    _prctl = None


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the benchmark process dies, so no worker or server outlives it."""
    _prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(args: list[str], env: dict, log: Path | None = None) -> subprocess.Popen:
    output = open(log, "ab") if log else subprocess.DEVNULL
    try:
        return subprocess.Popen(args, env=env, cwd=ROOT, stdout=output, stderr=output,
                                preexec_fn=_die_with_parent if _prctl else None)
    finally:
        if log:
            output.close()


def log_tail(log: Path | None, lines: int = 15) -> str:
    if not log or not log.exists():
        return ""
    text = log.read_text(errors="replace").strip().splitlines()[-lines:]
    return ("\n    " + "\n    ".join(text)) if text else ""


def wait_http(url: str, timeout: float = 20.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise BenchError(f"the server for {url} exited with status {process.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise BenchError(f"{url} did not answer within {timeout}s")


def start_gunicorn(app: str, port: int, env: dict, workers: int = 1, threads: int = 1,
                   log: Path | None = None) -> subprocess.Popen:
    worker_class = ["--worker-class", "gthread", "--threads", str(threads)] if threads > 1 else []
    process = spawn([PYTHON, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
                     "--backlog", "2048", *worker_class, "--log-level", "warning", "--chdir", str(ROOT), app],
                    env, log)
    try:
        wait_http(f"http://127.0.0.1:{port}/", process=process)
    except BenchError as exc:
        stop([process])
        raise BenchError(f"{exc}{log_tail(log)}") from None
    return process


def stop(processes: list[subprocess.Popen], grace: float = 20.0) -> None:
    """SIGTERM each (a worker finishes its jobs in flight), then SIGKILL what is still running after ``grace``."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def registered_slots(connection: redis.Redis, name: str) -> int:
    """How many slots of the worker process called ``name`` are registered with RQ (``<name>.<index>.<hex>``)."""
    prefix = f"rq:worker:{name}."
    return sum(1 for key in get_keys(connection=connection)
               if key.startswith(prefix) and key[len(prefix):].split(".", 1)[0].isdigit())


@contextmanager
def running_workers(count: int, env: dict, connection: redis.Redis, slots: int, log_dir: Path,
                    timeout: float = 60.0):
    """Start ``count`` `python worker.py` processes and wait until each has registered its ``slots`` RQ workers.

    Each process runs one RQ worker per slot (``slot_plan``), named ``<process name>.<slot>.<hex>``; the
    processes get names of their own, so only their slots are counted. Yields the Popen objects; stops them
    (SIGTERM, then SIGKILL) on the way out, whatever happened.
    """
    names = [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    logs = [log_dir / f"worker-{name}.log" for name in names]
    processes = [spawn([PYTHON, str(ROOT / "worker.py"), "--name", name], env, log) for name, log in zip(names, logs)]
    try:
        deadline = time.monotonic() + timeout
        while True:
            for process, log in zip(processes, logs):
                if process.poll() is not None:
                    raise BenchError(f"a worker process exited with status {process.returncode} while starting"
                                     f"{log_tail(log)}")
            ready = [registered_slots(connection, name) for name in names]
            if all(n >= slots for n in ready):
                break
            if time.monotonic() > deadline:
                raise BenchError(f"worker processes did not register their {slots} slots within {timeout:.0f}s "
                                 f"(registered: {ready}){log_tail(logs[0])}")
            time.sleep(0.05)
        yield processes
    finally:
        stop(processes)


def check_alive(processes: list[subprocess.Popen] | None) -> None:
    for process in processes or []:
        if process.poll() is not None:
            raise BenchError(f"process {process.pid} ({' '.join(map(str, process.args[1:3]))}) exited with "
                             f"status {process.returncode} during the run")


def rate_limited_waiting(connection: redis.Redis) -> int:
    """Jobs held back by RQ's per-key rate limits (not yet in any queue)."""
    return sum(connection.zcard(key) for key in connection.scan_iter(match="rq:rl:*:rate_limited", count=1000))


def queue_state(connection: redis.Redis, queue_name: str) -> str:
    queue = Queue(queue_name, connection=connection)
    running = StartedJobRegistry(queue_name, connection=connection)
    failed = connection.zcard(f"rq:failed:{queue_name}")
    return (f"queued {queue.count}, running {running.get_job_count(cleanup=False)}, failed {failed}, "
            f"held by rate limits {rate_limited_waiting(connection)}")


def wait_finished(connection: redis.Redis, queue_name: str, expected: int, timeout: float,
                  processes: list[subprocess.Popen] | None = None) -> float:
    """Wait until ``expected`` jobs of the queue have finished; return the time that took, from now."""
    started = time.perf_counter()
    finished_key = FinishedJobRegistry(queue_name, connection=connection).key
    while True:
        done = connection.zcard(finished_key)
        if done >= expected:
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise BenchError(f"only {done}/{expected} jobs of {queue_name} finished within {timeout:.0f}s "
                             f"({queue_state(connection, queue_name)})")
        check_alive(processes)
        time.sleep(0.02)


def wait_delivered(connection: redis.Redis, app_ids: list[int], timeout: float,
                   processes: list[subprocess.Popen] | None = None) -> float:
    """Wait until every app has had an attempt recorded (its last delivery); return the time that took, from now."""
    started = time.perf_counter()
    fields = [str(app_id) for app_id in app_ids]
    while True:
        done = sum(value is not None for value in connection.hmget("hookline:last-delivery", fields))
        if done == len(fields):
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise BenchError(f"only {done}/{len(fields)} apps had a delivery within {timeout:.0f}s")
        check_alive(processes)
        time.sleep(0.005)


def wait_received(connection: redis.Redis, message_ids, timeout: float,
                  processes: list[subprocess.Popen] | None = None) -> dict[str, float]:
    """Wait until the receiver has noted every ``message_ids`` in ``bench:received``; return id -> receipt time."""
    wanted = set(message_ids)
    deadline = time.monotonic() + timeout
    while True:
        received = {key.decode(): float(value) for key, value in connection.hgetall("bench:received").items()}
        missing = wanted - received.keys()
        if not missing:
            return received
        if time.monotonic() > deadline:
            raise BenchError(f"the receiver got {len(wanted) - len(missing)}/{len(wanted)} measured deliveries "
                             f"within {timeout:.0f}s ({queue_state(connection, 'hookline-webhooks')})")
        check_alive(processes)
        time.sleep(0.05)


def reset_redis(connection: redis.Redis) -> None:
    """Forget every RQ key (queues, registries, rate limits, scheduled retries, workers) and the receipts."""
    for pattern in ("rq:*", "bench:*", "hookline:org-gate:*", "hookline:worker-slots"):
        batch = []
        for key in connection.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                connection.unlink(*batch)
                batch = []
        if batch:
            connection.unlink(*batch)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far, all cores (``/proc/stat``); idle and iowait are not busy."""
    # user nice system idle iowait irq softirq steal (guest and guest_nice are inside user and nice already)
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of all the machine's cores that was busy between two ``machine_ticks()``."""
    return (after[0] - before[0]) / max(1, after[1] - before[1])


def percentile(values: list[float], pct: float) -> float:
    if not values:
        raise BenchError("no samples to take a percentile of")
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
