"""With Redis or the database down, a request that needs it answers 503 with Retry-After, not a 500."""

import logging

import pytest
from sqlalchemy.exc import OperationalError


@pytest.fixture
def redis_down(app):
    """Point the app's Redis client at a port where nothing listens (as after Redis died)."""
    import redis

    original = app.extensions["redis"]
    app.extensions["redis"] = redis.Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.2)
    yield
    app.extensions["redis"] = original


@pytest.fixture
def stop_database(app, monkeypatch):
    """Call it to make every statement from then on fail the way a stopped database does."""
    from webapp.core.extensions import db

    def stop():
        with app.app_context():
            engine = db.engine
            db.session.remove()

        def refuse(*args, **kwargs):
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

        monkeypatch.setattr(engine, "connect", refuse)
        monkeypatch.setattr(engine, "raw_connection", refuse)

    return stop


@pytest.fixture
def app_page(owner):
    from tests.views.test_apps import APP

    assert owner.post("/orgs/acme/apps/new", APP).status_code == 302
    assert owner.get("/orgs/acme/apps/pager-bridge").status_code == 200
    return "/orgs/acme/apps/pager-bridge"


def test_app_page_with_redis_down_is_a_503_page_that_names_redis(owner, app, app_page, redis_down, caplog):
    with caplog.at_level(logging.WARNING):
        response = owner.get(app_page)
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"
    text = response.get_data(as_text=True)
    assert "temporarily unavailable" in text and "Redis (the queue and cache) is not answering" in text
    assert "Traceback" not in caplog.text
    assert [r.message for r in caplog.records if "request.unavailable" in r.message] == [
        f"request.unavailable dependency=redis method=GET path={app_page} error=ConnectionError"]


def test_api_with_the_database_down_is_a_json_503(app, stop_database):
    stop_database()
    response = app.test_client().get("/api/0/organizations/acme/sentry-apps/",
                                     headers={"Authorization": "Bearer hl_nothing"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"
    assert response.json == {"detail": "The database is not answering; try again in 30 seconds.",
                             "dependency": "database"}


def test_ingestion_with_both_down_is_a_json_503_the_sdk_retries(app, world, redis_down, stop_database):
    from tests.test_ingest import EVENT, envelope

    stop_database()
    key = world.dsn.split("//")[1].split("@")[0]
    response = app.test_client().post(f"/api/{world.project_id}/envelope/", data=envelope(({"type": "event"}, EVENT)),
                                      headers={"X-Sentry-Auth": f"Sentry sentry_key={key}"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"
    assert response.json["dependency"] == "database"


def test_ingestion_with_the_database_down_still_accepts_a_cached_project(app, world, stop_database):
    """Accept, then process: with the project's key cached, an event needs only Redis to be accepted."""
    from tests.test_ingest import EVENT, envelope

    key = world.dsn.split("//")[1].split("@")[0]

    def send(event_id):
        return app.test_client().post(f"/api/{world.project_id}/envelope/",
                                      data=envelope(({"type": "event"}, {**EVENT, "event_id": event_id})),
                                      headers={"X-Sentry-Auth": f"Sentry sentry_key={key}"})

    assert send("a" * 32).status_code == 200  # the project is cached from now on, as in production
    stop_database()
    response = send("b" * 32)
    assert response.status_code == 200 and response.json == {"id": "b" * 32}


def test_a_wrong_statement_is_still_a_500_not_an_outage(app):
    from sqlalchemy.exc import ProgrammingError

    from webapp.core.outages import is_database_outage

    assert not is_database_outage(ProgrammingError("SELEC 1", {}, Exception("syntax error")))
    assert is_database_outage(OperationalError("SELECT 1", {}, Exception("server closed the connection")))
