"""``python worker.py`` as operators run it: many deliveries in flight, stops cleanly, no scheduler child left."""

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from tests.lifecycle import log_entries, send

ROOT = Path(__file__).resolve().parent.parent.parent


def start_worker(settings, output=None, **overrides) -> subprocess.Popen:
    """Start ``worker.py``; its log goes to a pipe (read it with ``stop``), or to the file ``output`` for a test
    whose worker logs more than a pipe holds (a full pipe would block the worker's logging)."""
    env = dict(os.environ)
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "BASE_URL", "WEBHOOK_ALLOW_PRIVATE", "WEBHOOK_TIMEOUT"):
        env[name] = str(settings[name])
    env.update({name: str(value) for name, value in overrides.items()})
    if output is None:
        return subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    with open(output, "w") as log:
        return subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_for(predicate, timeout: float, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout} s")


def children_of(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


@contextmanager
def running_worker(settings, output=None, **overrides):
    """Run ``worker.py``; the test stops it (``stop``), and it is killed if the test fails before that."""
    worker = start_worker(settings, output, **overrides)
    try:
        yield worker
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)


def stop(worker: subprocess.Popen, *signals: tuple[signal.Signals, float]) -> str:
    """Send each signal (then wait the given seconds); return the worker's output once it has exited."""
    for signum, pause in signals:
        worker.send_signal(signum)
        time.sleep(pause)
    output, _ = worker.communicate(timeout=30)
    return output


def test_one_process_keeps_many_slow_deliveries_in_flight_and_stops_cleanly(app, settings, pager, receiver):
    receiver.answer(200, delay=0.5)
    app.config["WEBHOOK_APP_CONCURRENCY"] = 16
    with running_worker(settings, WORKER_CONCURRENCY=16, WEBHOOK_APP_CONCURRENCY=16) as worker:
        wait_for(lambda: app.extensions["redis"].keys("rq:worker:*"), 20)
        started = time.monotonic()
        ids = send(app, pager, 16)
        wait_for(lambda: len(receiver.received) == 16, 10)
        elapsed = time.monotonic() - started
        assert elapsed < 4.0, f"16 deliveries of 0.5 s each took {elapsed:.1f} s: not concurrent"
        assert sorted(r.headers["Webhook-Id"] for r in receiver.received) == sorted(ids)
        assert children_of(worker.pid) == []  # no forked scheduler to outlive the worker
        output = stop(worker, (signal.SIGTERM, 0))
    assert worker.returncode == 0, output
    assert "Traceback" not in output
    assert len(log_entries(app, pager)) == 16


def test_ctrl_c_and_a_supervisors_sigterm_together_are_one_clean_stop(app, settings, pager, receiver):
    """Ctrl-C in a terminal reaches every process, and a supervisor may send SIGTERM as well: one stop, exit 0."""
    with running_worker(settings, WORKER_CONCURRENCY=2) as worker:
        wait_for(lambda: app.extensions["redis"].keys("rq:worker:*"), 20)
        # The stop may be over before the SIGTERM comes: a late duplicate must not kill the exiting process.
        output = stop(worker, (signal.SIGINT, 0.2), (signal.SIGTERM, 0))
    assert worker.returncode == 0, output
    assert "cold_stop" not in output


def test_idle_slots_waiting_for_jobs_are_woken_by_a_stop_instead_of_ending_their_waits(app, settings):
    """An idle slot waits DEQUEUE_SLICE (10 s) for a job before it asks again; a stop ends every wait at once."""
    from webapp.dispatch.queues import DEQUEUE_SLICE

    redis = app.extensions["redis"]
    with running_worker(settings, WORKER_CONCURRENCY=32) as worker:
        wait_for(lambda: len(redis.keys("rq:worker:*")) >= 32, 20)
        # Every slot waiting on its queue (BLMOVE), as CLIENT LIST shows, the waits begun well within a slice.
        wait_for(lambda: sum(client.get("cmd") == "blmove" for client in redis.client_list()) >= 32, 10)
        time.sleep(1.0)
        stopping = time.monotonic()
        output = stop(worker, (signal.SIGTERM, 0))
        stopped_in = time.monotonic() - stopping
    assert worker.returncode == 0, output
    assert "Traceback" not in output and "slot_error" not in output, output
    assert stopped_in < min(3.0, DEQUEUE_SLICE / 2), f"stopped in {stopped_in:.1f} s\n{output}"
