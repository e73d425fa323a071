"""A fan-out shared by hung receivers and a healthy one, as an operator would run it: events sent with the real
``sentry-sdk`` to the web app, one ``python worker.py`` at the default concurrency, ``WEBHOOK_TIMEOUT=1``."""

import socket
import threading
import time
from datetime import timezone

import sentry_sdk
from sqlalchemy import func, select
from werkzeug import Response

from tests.engine.test_worker_process import running_worker, wait_for
from webapp.apps.internal_apps import delete_internal_app, register_internal_app
from webapp.apps.projects import create_project
from webapp.core.extensions import db
from webapp.models import Event, Organization, Project, SentryApp

RUNS = 10
EVENTS = 20
HUNG_APPS = 10


def start_organisation(app, make_user, run: int, hung_url: str, healthy_url: str, live_server: str) -> str:
    """Org ``run<N>`` with HUNG_APPS apps at ``hung_url`` and one at ``healthy_url``, all on ``error``; return its DSN."""
    make_user(f"owner{run}@example.com", f"run{run}", "owner")
    with app.app_context():
        organization = db.session.scalar(select(Organization).where(Organization.slug == f"run{run}"))
        project = create_project(organization, "Web")
        for index in range(HUNG_APPS):
            register_internal_app(organization, f"Hung {index}", hung_url, ["error"])
        register_internal_app(organization, "Healthy", healthy_url, ["error"])
        return project.dsn(live_server)


def delete_apps(app, run: int) -> None:
    """Delete the run's apps: their deliveries still waiting are dropped as the worker meets them."""
    with app.app_context():
        organization = db.session.scalar(select(Organization).where(Organization.slug == f"run{run}"))
        for sentry_app in db.session.scalars(select(SentryApp).where(SentryApp.organization_id == organization.id)):
            delete_internal_app(sentry_app, None)
        db.session.commit()


def send_events(dsn: str) -> float:
    """Send EVENTS errors with sentry-sdk; return when (time.time()) the last was accepted."""
    sentry_sdk.init(dsn=dsn, default_integrations=False, auto_enabling_integrations=False, traces_sample_rate=None)
    try:
        for index in range(EVENTS):
            try:
                raise ValueError(f"card declined {index}")
            except ValueError:
                sentry_sdk.capture_exception()
            sentry_sdk.flush()
        return time.time()
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init()


def test_a_healthy_apps_fan_out_deliveries_never_wait_for_hung_apps(app, settings, make_user, httpserver, live_server,
                                                                     tmp_path):
    hung = socket.create_server(("127.0.0.1", 0), backlog=4096)  # accepts (the kernel does), never answers
    hung_url = f"http://127.0.0.1:{hung.getsockname()[1]}/hook"
    received: dict[str, list[float]] = {}  # path -> time.time() of each error.created
    lock = threading.Lock()

    def record(request):
        if request.headers.get("Sentry-Hook-Resource") == "error":
            with lock:
                received.setdefault(request.path, []).append(time.time())
        return Response("ok")

    after_sent, after_stored = [], []
    try:
        with running_worker(settings, output=tmp_path / "worker.log", WEBHOOK_TIMEOUT=1) as worker:
            wait_for(lambda: app.extensions["redis"].keys("rq:worker:*"), 20)
            for run in range(RUNS):
                path = f"/healthy{run}"
                httpserver.expect_request(path, method="POST").respond_with_handler(record)
                dsn = start_organisation(app, make_user, run, hung_url, httpserver.url_for(path), live_server)
                last_sent = send_events(dsn)
                wait_for(lambda: len(received.get(path, [])) >= EVENTS, 30)
                last_stored = last_event_stored(app, run)
                after_sent.append(max(received[path]) - last_sent)
                after_stored.append(max(received[path]) - last_stored)
                delete_apps(app, run)
                time.sleep(1.2)  # the run's attempts in flight end: each run starts from a quiet engine
            assert worker.poll() is None
    finally:
        hung.close()
    # The delivery engine's part: the 20th delivery within 1 s of the 20th event being stored (before: 11 s, which
    # a broken engine still shows here, since the hung apps would hold the fan-out after storage). The time from the
    # SDK's last send to that storage is ingestion's: most of a second on a quiet 2-core machine, as long with no hung
    # app at all, and 2-3.5 s while CI loads the machine, so it is shown but not bounded here. On PostgreSQL over
    # loopback each event's post-processing (its statements are round trips) takes longer: half as much again.
    slower = 1.0 if settings["DATABASE_URL"].startswith("sqlite") else 1.5
    shown = f"after stored {[f'{lag:.2f}' for lag in after_stored]}, after sent {[f'{lag:.2f}' for lag in after_sent]}"
    print(f"\n[hung fan-out] {shown}")
    assert all(lag <= 1.0 * slower for lag in after_stored), shown


def last_event_stored(app, run: int) -> float:
    """When (time.time()) the run's last event was stored by the worker."""
    with app.app_context():
        received = db.session.scalar(select(func.max(Event.received)).join(Project).join(Organization)
                                     .where(Organization.slug == f"run{run}"))
        return received.replace(tzinfo=received.tzinfo or timezone.utc).timestamp()
