"""The ingestion endpoints' answers to good and bad input (what an SDK or a curl user sees)."""

import gzip
import json
import zlib

import brotli
import pytest
import redis
from flask_migrate import downgrade, upgrade
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue
from rq.job import Job
from rq.registry import FinishedJobRegistry
from sqlalchemy import select, text

from tests.alert_world import wait_unless_a_minute_has_time_left
from webapp.alerts.ingest_outcomes import last_day_outcomes
from webapp.apps.project_keys import create_key, delete_key, update_key
from webapp.apps.projects import create_project, set_key_rate_limit
from webapp.core import keys
from webapp.core.embedded_redis import free_port
from webapp.core.extensions import db
from webapp.models import Project, ProjectKey

AUTH = "Sentry sentry_version=7, sentry_client=test/1.0, sentry_key={key}"


def envelope(*items, header=None) -> bytes:
    lines = [json.dumps(header or {"event_id": "9ec79c33ec9942ab8353589fcb2e04dc"})]
    for item_header, payload in items:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        lines.append(json.dumps({**item_header, "length": len(data)}))
        lines.append(data.decode("latin-1"))
    return "\n".join(lines).encode("latin-1")


EVENT = {"event_id": "9ec79c33ec9942ab8353589fcb2e04dc", "message": "boom", "level": "error"}


@pytest.fixture
def key(world):
    return world.dsn.split("//")[1].split("@")[0]


@pytest.fixture
def post(app, world, key):
    client = app.test_client()

    def send(body, *, kind="envelope", encoding=None, auth=True, project_id=None):
        headers = {"X-Sentry-Auth": AUTH.format(key=key)} if auth else {}
        if encoding:
            headers["Content-Encoding"] = encoding
        return client.post(f"/api/{project_id or world.project_id}/{kind}/", data=body, headers=headers)

    return send


@pytest.fixture
def stored(world, run_worker):
    """Run every queued job (the ingest jobs store events), then count the stored events."""

    def count() -> int:
        run_worker()
        return world.event_count()

    return count


def queued(app) -> int:
    return Queue(keys.WEBHOOK_QUEUE, connection=app.extensions["redis"]).count


def test_envelope_is_answered_with_the_event_id_and_handed_to_the_worker(app, world, post, run_worker):
    response = post(envelope(({"type": "event"}, EVENT)))
    assert response.status_code == 200
    assert response.json == {"id": "9ec79c33ec9942ab8353589fcb2e04dc"}
    # Accepted, not yet stored: the worker stores it, then runs its post-processing (the webhooks).
    assert world.event_count() == 0 and queued(app) == 1
    run_worker()
    assert world.event_count() == 1
    finished = FinishedJobRegistry(keys.WEBHOOK_QUEUE, connection=app.extensions["redis"]).get_job_ids()
    functions = sorted(Job.fetch(job_id, connection=app.extensions["redis"]).func_name for job_id in finished)
    assert "webapp.dispatch.intake.store_queued_event" in functions
    assert "webapp.dispatch.tasks.post_process_event" in functions
    assert app.extensions["redis"].keys("hookline:queued-event:*") == []  # the payload is gone once stored


@pytest.mark.parametrize("encoding,compress", [
    ("gzip", gzip.compress), ("deflate", zlib.compress), ("br", brotli.compress)])
def test_compressed_bodies(world, post, encoding, compress, stored):
    response = post(compress(envelope(({"type": "event"}, EVENT))), encoding=encoding)
    assert response.status_code == 200 and stored() == 1


def test_the_same_event_id_twice_is_stored_once(app, world, post, run_worker):
    body = envelope(({"type": "event"}, EVENT))
    assert post(body).status_code == 200
    run_worker()
    assert post(body).status_code == 200  # the SDK retries after the first was stored...
    assert post(body).status_code == 200  # ...and again while that retry is still queued
    run_worker()
    assert world.event_count() == 1
    finished = FinishedJobRegistry(keys.WEBHOOK_QUEUE, connection=app.extensions["redis"]).get_job_ids()
    functions = [Job.fetch(job_id, connection=app.extensions["redis"]).func_name for job_id in finished]
    assert functions.count("webapp.dispatch.tasks.post_process_event") == 1


def test_items_we_do_not_use_are_accepted_and_ignored(world, post, stored):
    body = envelope(
        ({"type": "session"}, {"sid": "x", "status": "ok"}),
        ({"type": "transaction"}, {"type": "transaction", "spans": []}),
        ({"type": "attachment", "filename": "a.bin"}, b"\x00\x01binary"),
        ({"type": "client_report"}, {"discarded_events": []}),
    )
    response = post(body)
    assert response.status_code == 200 and response.json == {"id": "9ec79c33ec9942ab8353589fcb2e04dc"}
    assert stored() == 0


def test_envelope_items_without_length(world, post, stored):
    body = b'{}\n{"type":"event"}\n' + json.dumps(EVENT).encode() + b"\n"
    assert post(body).status_code == 200 and stored() == 1


def test_missing_key_is_401(world, post, stored):
    response = post(envelope(({"type": "event"}, EVENT)), auth=False)
    assert response.status_code == 401 and "sentry_key" in response.json["detail"]
    assert stored() == 0


def test_wrong_key_and_unknown_project_are_403(app, world, stored):
    client = app.test_client()
    body = envelope(({"type": "event"}, EVENT))
    for project_id, key in [(world.project_id, "0" * 32), (9999, "0" * 32)]:
        response = client.post(f"/api/{project_id}/envelope/", data=body, headers={"X-Sentry-Auth": AUTH.format(key=key)})
        assert response.status_code == 403 and "DSN" in response.json["detail"]
    assert stored() == 0


@pytest.mark.parametrize("body,detail", [
    (b"not json at all", "envelope header is not valid JSON"),
    (b'{}\n{"type": "event", "length": 500}\n{}', "runs past the end"),
    (b'{}\n{"type": "event"}\n[1, 2]', "must be a JSON object"),
    (b'{}\n{"type": "event"}\n{broken\n{"type": "event"}\n{"ok": 1}', "event item is not valid JSON"),
])
def test_malformed_envelopes_are_400_and_store_nothing(app, world, post, body, detail, stored):
    response = post(body)
    assert response.status_code == 400 and detail in response.json["detail"]
    assert stored() == 0 and queued(app) == 0


def test_malformed_store_body_is_400(world, post, stored):
    response = post(b"{nope", kind="store")
    assert response.status_code == 400 and stored() == 0


def test_bad_compression_is_400_and_unknown_encoding_415(world, post, stored):
    assert post(b"not gzip", encoding="gzip").status_code == 400
    assert post(b"whatever", encoding="zstd-9000").status_code == 415
    assert stored() == 0


def test_oversize_bodies_are_413(app, world, post, stored):
    app.config["INGEST_MAX_BYTES"] = 2000
    big = envelope(({"type": "event"}, {**EVENT, "message": "x" * 5000}))
    assert post(big).status_code == 413
    bomb = gzip.compress(b'{}\n{"type":"event"}\n{"message": "' + b"x" * 100_000 + b'"}')
    assert len(bomb) < 2000
    assert post(bomb, encoding="gzip").status_code == 413
    assert stored() == 0


def test_create_project_cli_prints_the_dsn(app, runner, make_user):
    make_user("owner@example.com", "acme")
    result = runner.invoke(args=["create-project", "--org", "acme", "--name", "Backend API"])
    assert result.exit_code == 0, result.output
    assert __import__("re").fullmatch(r"http://[0-9a-f]{32}@hookline\.test/\d+\n", result.output)
    assert runner.invoke(args=["create-project", "--org", "acme", "--name", "Backend API"]).exit_code != 0
    missing = runner.invoke(args=["create-project", "--org", "nope", "--name", "X"])
    assert missing.exit_code != 0 and "no organisation" in missing.output


@pytest.mark.parametrize("event", [
    {"exception": {"values": 5}},
    {"exception": {"values": [{"type": "E", "value": "v", "stacktrace": ["not", "a", "dict"]}]}},
    {"exception": {"values": [{"type": "E", "stacktrace": {"frames": "nope"}}]}},
    {"exception": [{"type": "E", "value": "legacy list form"}]},
    {"message": {"formatted": 7}, "level": ["error"], "tags": "oops", "fingerprint": "x"},
])
def test_odd_shapes_from_clients_are_stored_not_500(world, post, event, stored):
    response = post(envelope(({"type": "event"}, {**EVENT, **event})))
    assert response.status_code == 200 and stored() == 1


def test_a_non_ascii_key_is_refused_not_500(app, world, stored):
    response = app.test_client().post(f"/api/{world.project_id}/store/?sentry_key=é", json=EVENT)
    assert response.status_code == 403 and stored() == 0


@pytest.mark.parametrize("body,auth,status,detail", [
    (b"[" * 3000 + b"]" * 3000, False, 400, "nested deeper than 64 levels"),  # refused before authentication
    (envelope(({"type": "event"}, {**EVENT, "extra": {"x": json.loads("[" * 100 + "]" * 100)}})), True, 400,
     "nested deeper than 64 levels"),
    (envelope(header={"event_id": EVENT["event_id"], "dsn": "http://[::1"}), False, 401, "Missing sentry_key"),
])
def test_hostile_envelopes_are_4xx_and_store_nothing(app, world, post, body, auth, status, detail, stored):
    response = post(body, auth=auth)
    assert response.status_code == status and detail in response.json["detail"]
    assert stored() == 0 and queued(app) == 0


def test_a_project_id_beyond_any_integer_is_403(app, key):
    response = app.test_client().post("/api/99999999999999999999/store/", data=json.dumps(EVENT),
                                      headers={"X-Sentry-Auth": AUTH.format(key=key)})
    assert response.status_code == 403 and "Unknown project" in response.json["detail"]


def test_nul_characters_and_lone_surrogates_are_replaced_not_500(app, world, post, stored):
    body = json.dumps({**EVENT, "message": "bad\x00byte \ud800 here"}).encode()
    assert post(body, kind="store").status_code == 200
    assert stored() == 1
    [group] = world.groups()
    assert group.title.startswith("bad\ufffdbyte \ufffd") and group.title.endswith(" here")


def test_a_key_past_its_quota_gets_429_with_when_to_retry_and_nothing_is_stored(app, world, post, stored):
    wait_unless_a_minute_has_time_left()  # the quota is per minute: start the test well inside one
    app.config["INGEST_RATE_LIMIT"] = 3
    answers = [post(json.dumps({**EVENT, "event_id": f"{n:032x}"}).encode(), kind="store") for n in range(5)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429, 429]
    refused = answers[3]
    assert "may send 3 events a minute" in refused.json["detail"]
    retry_after = int(refused.headers["Retry-After"])
    assert 0 < retry_after <= 60
    assert refused.headers["X-Sentry-Rate-Limits"] == f"{retry_after}::key:project_quota"  # what sentry-sdk reads
    assert stored() == 3


def test_an_envelope_carries_one_event_as_in_sentry(app, world, post, stored):
    items = [({"type": "event"}, {**EVENT, "event_id": f"{n:032x}", "message": f"event {n}"}) for n in range(50)]
    response = post(envelope(*items))
    assert response.status_code == 200 and response.json["id"] == f"{0:032x}"
    assert stored() == 1


def test_ingestion_reads_bodies_up_to_its_own_limit_past_the_app_wide_one(app, post, stored):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    body = envelope(({"type": "event"}, {**EVENT, "message": "x" * 5000}))
    assert len(body) > 1000
    assert post(body).status_code == 200
    assert stored() == 1
    app.config["INGEST_MAX_BYTES"] = 2000
    too_big = post(body)
    assert too_big.status_code == 413 and too_big.json["detail"] == "The body is larger than 2000 bytes."


def test_an_item_type_that_is_not_a_string_is_ignored_not_500(world, post, stored):
    response = post(envelope(({"type": ["event"]}, EVENT), ({"type": {"event": 1}}, EVENT)))
    assert response.status_code == 200 and response.json == {"id": EVENT["event_id"]}
    assert stored() == 0


@pytest.mark.parametrize("body", [
    b'{"message": "boom", "extra": {"x": NaN}}',
    b'{"message": "boom", "extra": {"x": -Infinity}}',
    b'{"message": "boom", "extra": {"x": 1e400}}',  # beyond any double: Python would read it as inf
    # UTF-16, whose code unit for U+2200 holds a '"' byte: the depth limit saw no nesting at all.
    ('{"message": "\u2200", "extra": {"x": ' + "[" * 100 + "]" * 100 + '}, "m": "\u2200"}').encode("utf-16-le"),
], ids=["NaN", "-Infinity", "1e400", "utf-16"])
def test_what_is_not_json_in_utf8_is_400_and_stores_nothing(app, world, post, body, stored):
    response = post(body, kind="store")
    assert response.status_code == 400 and response.json["detail"] == "The event is not valid JSON."
    assert queued(app) == 0 and stored() == 0


def test_a_duplicate_event_id_with_other_content_makes_no_empty_issue(world, post, stored):
    assert post(json.dumps(EVENT).encode(), kind="store").status_code == 200
    other = {**EVENT, "message": "a different message, so a different issue"}
    assert post(json.dumps(other).encode(), kind="store").status_code == 200
    assert stored() == 1
    assert [group.title for group in world.groups()] == ["boom"]


# ---------------------------------------------------------------- client keys, quotas per key, outcome counts


def store_with(app, project_id: int, key: str, n: int = 0):
    """POST one event (event id ``n``) to the store endpoint with ``key``; return the response."""
    return app.test_client().post(f"/api/{project_id}/store/", data=json.dumps({**EVENT, "event_id": f"{n:032x}"}),
                                  headers={"X-Sentry-Auth": AUTH.format(key=key)})


def add_key(app, project_id: int, label: str, rate_limit: int | None = None) -> str:
    with app.app_context():
        return create_key(db.session.get(Project, project_id), label, None, rate_limit).public_key


def change_key(app, public_key: str, **changes) -> None:
    with app.app_context():
        update_key(db.session.scalar(select(ProjectKey).where(ProjectKey.public_key == public_key)), changes, None)


def test_a_second_key_works_and_a_disabled_or_deleted_key_is_refused_at_once(app, world, key, stored):
    second = add_key(app, world.project_id, "Mobile")
    assert store_with(app, world.project_id, key, 1).status_code == 200
    assert store_with(app, world.project_id, second, 2).status_code == 200
    redis = app.extensions["redis"]
    assert redis.get(keys.project_keys_cache(world.project_id)) is not None  # later answers come through the cache

    change_key(app, second, is_active=False)
    refused = store_with(app, world.project_id, second, 3)
    assert refused.status_code == 403 and refused.json["detail"].startswith("This project key is disabled.")
    assert store_with(app, world.project_id, key, 4).status_code == 200  # the other key is untouched
    change_key(app, second, is_active=True)
    assert store_with(app, world.project_id, second, 5).status_code == 200

    assert redis.get(keys.project_keys_cache(world.project_id)) is not None
    with app.app_context():
        delete_key(db.session.scalar(select(ProjectKey).where(ProjectKey.public_key == key)), None)
    gone = store_with(app, world.project_id, key, 6)
    assert gone.status_code == 403 and "wrong project key" in gone.json["detail"]
    assert stored() == 4


def test_a_key_of_another_project_is_refused(app, world, key, stored):
    with app.app_context():
        other = create_project(db.session.get(Project, world.project_id).organization, "Other")
        other_id = other.id
    assert store_with(app, other_id, key).status_code == 403
    assert stored() == 0


def test_an_existing_dsn_keeps_working_after_the_keys_migration(app, world, key, stored):
    """Migration 0006 turns each project's one public key into its "Default" key, and keeps the project's events."""
    assert store_with(app, world.project_id, key).status_code == 200
    old_key = "0123456789abcdef0123456789abcdef"
    with app.app_context():
        db.session.remove()
        downgrade(revision="0005")
        db.session.execute(text("UPDATE project SET public_key = :key WHERE id = :id"),
                           {"key": old_key, "id": world.project_id})
        db.session.commit()
        upgrade()
        [row] = db.session.execute(text("SELECT label, public_key, is_active FROM project_key")).all()
        assert (row.label, row.public_key, bool(row.is_active)) == ("Default", old_key, True)
        db.session.remove()
    # A release before the keys cached no key lists; the migration wrote beside the ORM, so nothing invalidated.
    app.extensions["redis"].delete(keys.project_keys_cache(world.project_id))
    assert store_with(app, world.project_id, old_key, 2).status_code == 200
    assert stored() == 2 and len(world.groups()) == 1  # SQLite's table rebuild cascaded nothing away


def test_each_key_has_its_own_quota_its_own_limit_else_the_projects_else_the_default(app, world, key, stored):
    wait_unless_a_minute_has_time_left()  # the quota is per minute: start the test well inside one
    app.config["INGEST_RATE_LIMIT"] = 4
    limited = add_key(app, world.project_id, "Limited", rate_limit=2)
    answers = [store_with(app, world.project_id, limited, n).status_code for n in range(3)]
    assert answers == [200, 200, 429]  # the key's own limit
    answers = [store_with(app, world.project_id, key, n).status_code for n in range(10, 15)]
    assert answers == [200, 200, 200, 200, 429]  # the default, counted for this key alone
    with app.app_context():
        set_key_rate_limit(db.session.get(Project, world.project_id), "7", None)
    answers = [store_with(app, world.project_id, key, n).status_code for n in range(20, 24)]
    # The project's per-key limit (7; 4 taken: a refused event takes none) replaces the default at once.
    assert answers == [200, 200, 200, 429]
    refused = store_with(app, world.project_id, limited, 30)
    assert refused.status_code == 429 and "may send 2 events a minute" in refused.json["detail"]
    assert stored() == 2 + 7


def outcomes_of(app, project_id: int):
    with app.app_context():
        return last_day_outcomes(project_id)


def test_outcomes_are_counted_per_project_and_key(app, world, post, key):
    wait_unless_a_minute_has_time_left()
    app.config["INGEST_RATE_LIMIT"] = 1
    second = add_key(app, world.project_id, "Second")
    assert post(b"{nope", kind="store").status_code == 400  # before the quota is used: it is checked first
    three = [({"type": "event"}, {**EVENT, "event_id": f"{n:032x}"}) for n in range(3)]
    assert post(envelope(*three)).status_code == 200  # one accepted, two dropped
    assert post(envelope(({"type": "event"}, {**EVENT, "event_id": "f" * 32}))).status_code == 429
    assert store_with(app, world.project_id, "0" * 32).status_code == 403  # a wrong key: refused, for no key
    assert store_with(app, world.project_id, second).status_code == 200
    assert store_with(app, 9999, key).status_code == 403  # no such project: nothing to count it for
    totals, per_key = outcomes_of(app, world.project_id)
    assert totals == {"accepted": 2, "rate_limited": 1, "refused": 2, "dropped": 2}
    with app.app_context():
        first_id, second_id = (k.id for k in db.session.get(Project, world.project_id).client_keys)
    assert per_key[first_id] == {"accepted": 1, "rate_limited": 1, "refused": 1, "dropped": 2}
    assert per_key[second_id] == {"accepted": 1, "rate_limited": 0, "refused": 0, "dropped": 0}


def test_outcomes_cover_the_last_24_hours(app, world, key, clock):
    clock.current = clock.current.replace(minute=30)
    assert store_with(app, world.project_id, key, 1).status_code == 200
    clock.advance(hours=23)
    assert store_with(app, world.project_id, key, 2).status_code == 200
    assert outcomes_of(app, world.project_id)[0]["accepted"] == 2
    clock.advance(hours=1)  # the first event's hour is now 24 hours back
    assert outcomes_of(app, world.project_id)[0]["accepted"] == 1
    bucket = keys.ingest_outcomes(world.project_id, int(clock.now().timestamp()) // 3600 * 3600 - 3600)
    assert 24 * 3600 < app.extensions["redis"].ttl(bucket) <= keys.INGEST_OUTCOMES_TTL


def test_without_redis_ingestion_goes_on_uncounted_and_unlimited(app, world, key, caplog, stored):
    app.config["INGEST_RATE_LIMIT"] = 1
    original = app.extensions["redis"]
    # Nothing listens there; no retries, so each refused connection fails at once.
    app.extensions["redis"] = redis.Redis(port=free_port(), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    try:
        answers = [store_with(app, world.project_id, key, n).status_code for n in range(2)]
    finally:
        app.extensions["redis"].close()
        app.extensions["redis"] = original
    assert answers == [200, 200] and stored() == 2
    assert len([r for r in caplog.records if "ingest.quota_unchecked" in r.getMessage()]) == 2  # one line an event
    assert len([r for r in caplog.records if "ingest.outcomes_uncounted" in r.getMessage()]) == 2
