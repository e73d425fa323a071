"""A webhook URL that points at Hookline's own ingestion must not start a loop of events and webhooks."""

from sqlalchemy import select

from tests.engine.test_guarantees import ingest
from tests.lifecycle import log_entries
from webapp.apps.internal_apps import register_internal_app
from webapp.core.extensions import db
from webapp.models import Event, Organization, Project


def test_an_app_whose_webhook_is_hookline_itself_gets_one_refused_delivery_and_no_loop(
        app, world, live_server, receiver, run_worker):
    with app.app_context():
        project = db.session.get(Project, world.project_id)
        organization = db.session.scalar(select(Organization).where(Organization.slug == "acme"))
        own = f"{live_server}/api/{project.id}/store/?sentry_key={project.client_keys[0].public_key}"
        looping = register_internal_app(organization, "Loop", own, ["error"]).id
    assert ingest(app, world, "a" * 32, "card declined").status_code == 200
    for _ in range(3):  # were it to loop, each round would store an event and send another webhook
        run_worker()
    with app.app_context():
        assert db.session.query(Event).count() == 1
    [entry] = log_entries(app, looping)
    assert entry["event_type"] == "error.created" and entry["response_code"] == 400
    assert "Hookline webhook delivery" in entry["response_body"]


def test_deliveries_say_they_come_from_hookline(app, world, receiver, run_worker):
    assert ingest(app, world, "b" * 32).status_code == 200
    run_worker()
    assert receiver.received
    assert all(r.headers["User-Agent"].startswith("Hookline/") for r in receiver.received)
