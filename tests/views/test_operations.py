"""What an operator's load balancer and Prometheus see: /healthz, /readyz and /metrics."""

import time
import uuid

import pytest
from rq import Queue

from webapp.core import keys
from webapp.dispatch.queues import make_worker


@pytest.fixture
def live_slot(app):
    """One registered RQ worker with a fresh heartbeat, as a running ``worker.py`` slot has."""
    worker = make_worker(app, [keys.WEBHOOK_QUEUE], name=f"testhost.4242.0.{uuid.uuid4().hex[:6]}")
    worker.register_birth()
    worker.heartbeat()
    yield worker
    worker.register_death()


def test_healthz_answers_while_redis_is_down(settings):
    from tests.conftest import close_app
    from webapp import create_app

    settings["REDIS_URL"] = "redis://127.0.0.1:9/0"
    app = create_app(settings)
    response = app.test_client().get("/healthz")
    readiness = app.test_client().get("/readyz")
    close_app(app)
    assert response.status_code == 200 and response.json == {"status": "ok"}  # liveness: the process answers
    assert readiness.status_code == 503 and readiness.json["failed"] == ["redis"]
    assert "Redis does not answer" in readiness.json["checks"]["redis"]["error"]
    assert readiness.json["checks"]["database"] == {"ok": True}


def test_readyz_needs_a_live_worker(app):
    response = app.test_client().get("/readyz")
    assert response.status_code == 503 and response.json["failed"] == ["workers"]
    assert "no worker process" in response.json["checks"]["workers"]["error"]


def test_readyz_is_ready_with_a_live_worker_and_fresh_queues(app, live_slot):
    response = app.test_client().get("/readyz")
    assert response.status_code == 200, response.json
    assert response.json["status"] == "ready" and response.json["failed"] == []
    assert response.json["checks"]["workers"] == {"ok": True, "processes": 1, "slots": 1}


def test_readyz_fails_when_the_oldest_queued_job_is_too_old(app, live_slot):
    app.config["READY_MAX_QUEUE_AGE"] = 60
    redis = app.extensions["redis"]
    job = Queue(keys.WEBHOOK_QUEUE, connection=redis).enqueue("tests.engine.jobs.noop")
    assert app.test_client().get("/readyz").status_code == 200  # just queued: young
    redis.hset(job.key, "enqueued_at", time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(time.time() - 600)))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503 and response.json["failed"] == ["queues"]
    assert response.json["checks"]["queues"]["oldest_job_age_seconds"][keys.WEBHOOK_QUEUE] >= 599
    assert f"older than 60 s in {keys.WEBHOOK_QUEUE}" in response.json["checks"]["queues"]["error"]


def test_metrics_is_404_without_a_token_and_401_with_a_wrong_one(app):
    assert app.test_client().get("/metrics").status_code == 404
    app.config["METRICS_TOKEN"] = "s3cret-token"
    assert app.test_client().get("/metrics").status_code == 401
    wrong = app.test_client().get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"


def scrape(app) -> dict[str, float]:
    """GET /metrics and return each sample line as {"name{labels}": value}."""
    response = app.test_client().get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
    assert response.status_code == 200 and response.mimetype == "text/plain"
    samples = {}
    for line in response.get_data(as_text=True).splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_count_deliveries_queues_workers_and_apps(app, world, receiver, run_worker, live_slot):
    app.config["METRICS_TOKEN"] = "s3cret-token"
    redis = app.extensions["redis"]
    before = scrape(app)
    assert before['hookline_apps{status="enabled"}'] == 2 and before['hookline_apps{status="disabled"}'] == 0
    assert before["hookline_workers"] == 1 and before["hookline_worker_slots"] == 1
    assert before.get('hookline_deliveries_total{event_type="issue.created",outcome="success"}', 0) == 0

    from tests.test_ingest import EVENT, envelope

    key = world.dsn.split("//")[1].split("@")[0]
    response = app.test_client().post(f"/api/{world.project_id}/envelope/", data=envelope(({"type": "event"}, EVENT)),
                                      headers={"X-Sentry-Auth": f"Sentry sentry_key={key}"})
    assert response.status_code == 200
    queued = scrape(app)
    assert queued[f'hookline_queue_jobs{{queue="{keys.WEBHOOK_QUEUE}",state="queued"}}'] == 1
    assert queued[f'hookline_queue_oldest_job_age_seconds{{queue="{keys.WEBHOOK_QUEUE}"}}'] < 60

    run_worker()
    after = scrape(app)
    assert after['hookline_deliveries_total{event_type="issue.created",outcome="success"}'] == 1
    assert after['hookline_deliveries_total{event_type="error.created",outcome="success"}'] == 1
    assert after["hookline_delivery_duration_seconds_count"] == 2
    assert after['hookline_delivery_duration_seconds_bucket{le="+Inf"}'] == 2
    assert 0 < after["hookline_delivery_duration_seconds_sum"] < 10
    assert after[f'hookline_queue_jobs{{queue="{keys.WEBHOOK_QUEUE}",state="queued"}}'] == 0
    assert after["hookline_outbox_rows"] == 0
    assert redis.hget(keys.METRICS, "deliveries|success|issue.created") == b"1"


def test_failed_deliveries_are_counted_by_outcome(app, world, receiver, run_worker):
    app.config["METRICS_TOKEN"] = "s3cret-token"
    receiver.answer(500, path="/all")
    from tests.test_ingest import EVENT, envelope

    key = world.dsn.split("//")[1].split("@")[0]
    app.test_client().post(f"/api/{world.project_id}/envelope/", data=envelope(({"type": "event"}, EVENT)),
                           headers={"X-Sentry-Auth": f"Sentry sentry_key={key}"})
    run_worker()
    samples = scrape(app)
    assert samples['hookline_deliveries_total{event_type="error.created",outcome="error"}'] == 1
    assert samples.get('hookline_deliveries_total{event_type="error.created",outcome="success"}', 0) == 0
    assert samples[f'hookline_queue_jobs{{queue="{keys.RETRY_QUEUE}",state="scheduled"}}'] == 2  # both retry


def test_the_sample_dashboard_and_alert_rules_use_only_metrics_hookline_exports(app, live_slot):
    """A renamed metric would leave deploy/'s dashboard blank and its alerts silent."""
    import json
    import re
    from pathlib import Path

    app.config["METRICS_TOKEN"] = "s3cret-token"
    app.extensions["redis"].hincrby(keys.METRICS, "deliveries|success|issue.created", 1)  # a labelled counter shows once counted
    exported = {name.split("{")[0] for name in scrape(app)}
    deploy = Path(__file__).resolve().parents[2] / "deploy"
    dashboard = json.loads((deploy / "grafana-dashboard.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    expressions.append((deploy / "prometheus-alerts.yml").read_text())
    used = {name for text in expressions for name in re.findall(r"\bhookline_\w+", text)}
    assert used and used <= exported, sorted(used - exported)


def test_metrics_count_ingested_events_by_result(app, world):
    from tests.test_ingest import EVENT, envelope

    app.config["METRICS_TOKEN"] = "s3cret-token"
    key = world.dsn.split("//")[1].split("@")[0]
    client = app.test_client()
    items = [({"type": "event"}, {**EVENT, "event_id": f"{n:032x}"}) for n in range(3)]
    assert client.post(f"/api/{world.project_id}/envelope/", data=envelope(*items),
                       headers={"X-Sentry-Auth": f"Sentry sentry_key={key}"}).status_code == 200
    assert client.post(f"/api/{world.project_id}/store/", data=b"not json",
                       headers={"X-Sentry-Auth": f"Sentry sentry_key={key}"}).status_code == 400
    assert client.post("/api/999999/store/", data=b"{}").status_code == 403  # no such project: still counted
    samples = scrape(app)
    assert samples['hookline_ingest_events_total{result="accepted"}'] == 1
    assert samples['hookline_ingest_events_total{result="dropped"}'] == 2
    assert samples['hookline_ingest_events_total{result="refused"}'] == 2
    assert samples['hookline_ingest_events_total{result="rate_limited"}'] == 0


def test_a_slots_heartbeat_is_one_round_trip_and_writes_what_rqs_own_writes(app):
    """RQ's beat is three commands; a slot sends them in one pipeline (256 idle slots beat 50 times a second)."""
    from rq.worker import Worker

    redis = app.extensions["redis"]
    worker = make_worker(app, [keys.WEBHOOK_QUEUE], name=f"testhost.4242.1.{uuid.uuid4().hex[:6]}")
    worker.register_birth()
    try:
        redis.persist(worker.key)
        sent = []
        original = redis.connection_pool.get_connection

        def noting(*args, **kwargs):  # each command sent alone, and each pipeline, takes a connection once
            sent.append(args)
            return original(*args, **kwargs)

        redis.connection_pool.get_connection = noting
        try:
            worker.heartbeat()
        finally:
            redis.connection_pool.get_connection = original
        assert len(sent) == 1
        assert 0 < redis.ttl(worker.key) <= worker.worker_ttl + 60  # RQ's own TTL for a beat without a timeout
        assert 0 < redis.ttl(worker.executions_key) or not redis.exists(worker.executions_key)
        beat = Worker.find_by_key(worker.key, connection=redis).last_heartbeat
        assert beat is not None and abs(beat.timestamp() - time.time()) < 5
    finally:
        worker.register_death()
