"""Nothing meant for a receiver or an owner is lost: an SMTP outage, a worker killed mid-delivery, a Redis restart."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller
from rq.registry import StartedJobRegistry
from sqlalchemy import select

from tests.conftest import SMTPRecorder, close_app, move_scheduled_jobs, prepare_database, scheduled_in
from tests.lifecycle import load_app, send
from webapp import create_app
from webapp.accounts.people import create_user
from webapp.apps.internal_apps import register_internal_app
from webapp.core import keys
from webapp.core.embedded_redis import free_port, start_embedded_redis
from webapp.core.extensions import db
from webapp.dispatch.queues import make_worker
from webapp.models import Organization

ROOT = Path(__file__).resolve().parent.parent


def owner_and_pager(app, receiver) -> int:
    """Create org acme with an owner and app "Pager" on the receiver; return the app's id."""
    with app.app_context():
        create_user("owner@example.com", "correct-horse-battery", "acme", "owner")
        organization = db.session.scalar(select(Organization))
        return register_internal_app(organization, "Pager", receiver.url("/hook"), ["issue"]).id


def test_smtp_outage_is_retried_and_the_notice_arrives(settings, receiver):
    smtp_port = free_port()  # no SMTP server listens here yet: the outage
    settings["MAIL_PORT"] = str(smtp_port)
    app = create_app(settings)
    prepare_database(app)
    try:
        app_id = owner_and_pager(app, receiver)
        receiver.answer(410)
        send(app, app_id)
        make_worker(app).work(burst=True)
        assert load_app(app, app_id).status == "disabled"
        assert len(scheduled_in(app, keys.MAIL_QUEUE)) == 1  # the mail job failed and waits for its retry

        recorder = SMTPRecorder()
        server = Controller(recorder, hostname="127.0.0.1", port=smtp_port)
        server.start()  # the SMTP server is back
        try:
            move_scheduled_jobs(app.extensions["redis"])
            make_worker(app).work(burst=True)
        finally:
            server.stop()
        assert [" ".join(m["Subject"].split()) for m in recorder.messages] == ["Action required: Fix your Pager integration"]
    finally:
        app.extensions["redis"].flushdb()
        close_app(app)


def test_a_worker_killed_mid_delivery_loses_nothing(app, settings, pager, receiver, run_worker, run_scheduled):
    """SIGKILL a `python worker.py` while the receiver holds its request; RQ hands the job to another worker."""
    arrived, release = threading.Event(), threading.Event()

    def hold(request):
        receiver.received.append(receiver._check(request))
        if not arrived.is_set():
            arrived.set()
            release.wait(10)
        from werkzeug import Response

        return Response('{"ok": true}', content_type="application/json")

    receiver.server.clear_all_handlers()
    receiver.server.expect_request("/hook", method="POST").respond_with_handler(hold)
    [message_id] = send(app, pager)
    env = {**os.environ, **{k: str(v) for k, v in settings.items() if k.isupper() and k != "TESTING"},
           "WEBHOOK_TIMEOUT": "20"}
    worker = subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert arrived.wait(30), "the worker never sent the webhook"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        release.set()
        if worker.poll() is None:
            worker.kill()

    redis = app.extensions["redis"]
    registry = StartedJobRegistry(keys.WEBHOOK_QUEUE, connection=redis)
    assert len(registry.get_job_ids(cleanup=False)) == 1  # the job is still marked as running
    # RQ's maintenance finds it abandoned once its heartbeat lapses; look a day ahead instead of waiting.
    registry.cleanup(timestamp=time.time() + 86400)
    assert run_scheduled() >= 1  # requeued through its retry (beside the worker's metric-alert tick)
    run_worker()
    hooks = [r for r in receiver.received if r.path == "/hook"]
    assert [r.headers["Webhook-Id"] for r in hooks] == [message_id, message_id]
    assert load_app(app, pager).status == "enabled"


def test_a_redis_restart_between_attempts_loses_no_retry(settings, tmp_path, receiver):
    """With Redis persistence (appendonly), a scheduled retry survives a Redis restart and is delivered."""
    port = free_port()
    url, redis_process = start_embedded_redis(tmp_path / "redis", persist=True, port=port)
    settings["REDIS_URL"] = url
    app = create_app(settings)
    try:
        prepare_database(app)
        app_id = owner_and_pager(app, receiver)
        receiver.answer(503)
        [message_id] = send(app, app_id)
        make_worker(app).work(burst=True)
        assert len(scheduled_in(app)) == 1

        redis_process.terminate()  # a clean shutdown writes the append-only file
        redis_process.wait(10)
        app.extensions["redis"].connection_pool.disconnect()
        _, redis_process = start_embedded_redis(tmp_path / "redis", persist=True, port=port)

        assert len(scheduled_in(app)) == 1
        receiver.answer(200)
        move_scheduled_jobs(app.extensions["redis"])
        make_worker(app).work(burst=True)
        assert [r.headers["Webhook-Id"] for r in receiver.received] == [message_id, message_id]
        assert receiver.received[-1].json["action"] == "created"
    finally:
        close_app(app)
        redis_process.terminate()
        redis_process.wait(10)
