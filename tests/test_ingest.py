"""The ingestion endpoints' answers to good and bad input (what an SDK or a curl user sees)."""

import gzip
import json
import zlib

import brotli
import pytest
from rq import Queue
from rq.job import Job
from rq.registry import FinishedJobRegistry

from tests.alert_world import wait_unless_a_minute_has_time_left
from webapp import keys

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
    (b'{}\n{"type": "event"}\n{"ok": 1}\n{"type": "event"}\n{broken', "event item is not valid JSON"),
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
