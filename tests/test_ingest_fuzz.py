"""Fuzz the ingestion endpoints: whatever a client sends, the answer is 200 or 4xx, never 5xx.

Every request is checked the same way (``Ingest.send``): a refusal (4xx) stores and queues nothing; a 200
answers ``{"id": ...}``, and what it stored is strict JSON (no NaN) nested no deeper than ingestion allows.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from urllib.parse import quote

import brotli
import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rq import Queue
from rq.job import Job
from sqlalchemy import delete, func, select

from webapp.alerts.ingest import MAX_JSON_DEPTH
from webapp.core import keys
from webapp.core.extensions import db
from webapp.models import Event, Group, OutboxJob

MAX_BYTES = 20_000  # small, so that oversize and decompression-bomb bodies are cheap to build

fuzz = hypothesis_settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def settings(settings):
    settings["INGEST_RATE_LIMIT"] = str(10**9)  # the fuzz is about input, not the quota: no 429s
    settings["INGEST_MAX_BYTES"] = str(MAX_BYTES)
    return settings


@dataclass(frozen=True)
class Stored:
    events: int
    groups: int
    outbox_rows: int
    queued_jobs: int
    last_event_pk: int


class Ingest:
    """Send one request to an ingestion endpoint and check what every answer must satisfy."""

    def __init__(self, app, project_id: int, key: str):
        self.app = app
        self.client = app.test_client()
        self.project_id = project_id
        self.key = key
        self.processed: Stored | None = None  # what was stored after the last accepted event's job ran

    def stored(self) -> Stored:
        redis = self.app.extensions["redis"]
        with self.app.app_context():
            events, groups, outbox_rows, last_event_pk = (db.session.scalar(select(aggregate)) for aggregate in (
                func.count(Event.id), func.count(Group.id), func.count(OutboxJob.id), func.max(Event.id)))
            queued_jobs = sum(Queue(name, connection=redis).count for name in keys.ALL_QUEUES)
            return Stored(events, groups, outbox_rows, queued_jobs, last_event_pk or 0)

    def send(self, kind: str, body: bytes, headers: dict | None = None, query: dict | None = None,
             project: str | None = None):
        before = self.stored()
        path = f"/api/{project if project is not None else self.project_id}/{kind}/"
        response = self.client.post(path, data=body, headers=headers or {}, query_string=query or {})
        after = self.stored()
        status = response.status_code
        if currently_in_test_context():  # pytest --hypothesis-show-statistics shows the mix of answers
            event(f"HTTP {status}")
        assert status < 500, (status, response.get_data()[:500])
        assert status != 429
        if status >= 400:
            assert after == before, f"a {status} answer stored or queued something"
        else:
            assert status == 200 and set(response.json) == {"id"}, response.get_data()[:500]
            # Accepted, not stored: one ingest job is queued (none for an envelope without an event item), and
            # the worker's run of it stores the event.
            assert after.events == before.events and after.queued_jobs - before.queued_jobs in (0, 1)
            if after.queued_jobs > before.queued_jobs:
                self.processed = self.run_ingest_job()
                self.check_new_events(after, self.processed, response.json["id"])
        self.forget_events()
        return response

    def run_ingest_job(self) -> Stored:
        """Run the queued ingest job as a worker would (its function, in an app context); return what is stored."""
        redis = self.app.extensions["redis"]
        queue = Queue(keys.WEBHOOK_QUEUE, connection=redis)
        [job_id] = queue.job_ids
        job = Job.fetch(job_id, connection=redis)
        assert job.func_name == "webapp.dispatch.intake.store_queued_event"
        queue.remove(job_id)
        with self.app.app_context():
            job.perform()
            db.session.remove()
        return self.stored()

    def forget_events(self) -> None:
        """Delete what was stored and queued, so each example starts alike (a replayed event id is not a duplicate)."""
        with self.app.app_context():
            db.session.execute(delete(Event))
            db.session.execute(delete(Group))
            db.session.execute(delete(OutboxJob))
            db.session.commit()
        redis = self.app.extensions["redis"]
        for name in keys.ALL_QUEUES:
            Queue(name, connection=redis).empty()

    def check_new_events(self, before: Stored, after: Stored, answered_id) -> None:
        assert after.events - before.events <= 1  # one event per request at most
        if after.events == before.events:
            return
        # Stored with its post-processing job (queued at commit), in place of the ingest job.
        assert after.queued_jobs == before.queued_jobs and after.outbox_rows == before.outbox_rows
        with self.app.app_context():
            stored = db.session.get(Event, after.last_event_pk)
            assert stored.event_id == answered_id
            # What receivers get must parse with a strict parser; the legacy list form of ``exception``
            # gains one level (``{"values": [...]}``) when it is normalised.
            value = json.loads(stored.data_json, parse_constant=refuse_constant)
            assert depth_of(value) <= MAX_JSON_DEPTH + 1


def refuse_constant(name: str):
    raise AssertionError(f"stored event holds {name}, which is not JSON")


def depth_of(value) -> int:
    """How deeply a parsed JSON value's arrays and objects nest (a scalar is 0)."""
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    return 0


@pytest.fixture
def key(world):
    return world.dsn.split("//")[1].split("@")[0]


@pytest.fixture
def ingest(app, world, key):
    return Ingest(app, world.project_id, key)


def auth_header(key: str) -> dict:
    return {"X-Sentry-Auth": f"Sentry sentry_version=7, sentry_client=fuzz/1.0, sentry_key={key}"}


# -- JSON text, including what Python's json module accepts and JSON does not ---------------------------


class Raw(str):
    """JSON text written as is (numbers and constants ``json.dumps`` cannot or will not produce)."""


raw_tokens = st.one_of(
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1E-400", "-0", str(2**63),
                     str(-(2**63) - 1), str(10**20)]),
    st.sampled_from([4300, 4301]).map(lambda digits: "9" * digits),  # Python's int parsing stops past 4300 digits
).map(Raw)
# Characters that test the depth scanner and the decoders: quotes and backslashes, code points whose UTF-16
# or UTF-32 bytes contain '"', '\' or brackets, lone surrogates, NUL, a BOM.
TRICKY_CHARS = ['"', "\\", "[", "]", "{", "}", "\n", "\x00", "\ud800", "\udfff", "\u2200", "\u5c00", "\u225b",
                "\u7b5d", "\u5b00", "\ufeff", "\u2028", "é", "\U0001f600"]
strings = st.text(st.one_of(st.characters(), st.sampled_from(TRICKY_CHARS)), max_size=12)


def json_trees(leaves):
    return st.recursive(
        leaves, lambda children: st.lists(children, max_size=4) | st.dictionaries(strings, children, max_size=4),
        max_leaves=16)


clean_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                          strings)
scalars = st.one_of(clean_scalars, raw_tokens, st.floats())
clean_values = json_trees(clean_scalars)  # what json.dumps(allow_nan=False) can write
json_values = json_trees(scalars)  # and what careless clients write besides


def dump(value, ensure_ascii: bool) -> str:
    """Write ``value`` as JSON text the way a careless client might (NaN and Infinity pass, Raw as is)."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{dump(k, ensure_ascii)}:{dump(v, ensure_ascii)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(item, ensure_ascii) for item in value) + "]"
    return json.dumps(value, ensure_ascii=ensure_ascii)


@st.composite
def nested(draw):
    """A value nested around the depth limit, in lists and objects."""
    value = draw(scalars)
    for opener in draw(st.lists(st.sampled_from("[{"), min_size=MAX_JSON_DEPTH - 6, max_size=MAX_JSON_DEPTH + 6)):
        value = [value] if opener == "[" else {draw(strings): value}
    return value


hex32 = st.text("0123456789abcdef", min_size=32, max_size=32)
frames = st.lists(st.fixed_dictionaries({}, optional={
    "filename": json_values, "function": json_values, "module": json_values, "in_app": json_values}), max_size=3)
exception_values = st.lists(st.fixed_dictionaries({}, optional={
    "type": json_values, "value": json_values,
    "stacktrace": st.one_of(json_values, st.fixed_dictionaries({"frames": st.one_of(frames, json_values)}))}),
    max_size=3)
event_dicts = st.fixed_dictionaries({}, optional={
    "event_id": st.one_of(hex32, st.uuids().map(str), json_values),
    "message": st.one_of(strings, json_values, st.fixed_dictionaries({"formatted": json_values})),
    "logentry": json_values,
    "level": st.one_of(st.sampled_from(["debug", "info", "warning", "error", "fatal", "critical"]), json_values),
    "timestamp": st.one_of(st.floats(), st.integers(), strings, raw_tokens, st.sampled_from([
        "2026-11-01T12:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-23:59", "2026-13-45"])),
    "exception": st.one_of(st.fixed_dictionaries({"values": st.one_of(exception_values, json_values)}),
                           exception_values, json_values),
    "tags": json_values, "fingerprint": st.one_of(st.lists(st.one_of(strings, json_values)), json_values),
    "platform": json_values, "transaction": json_values, "culprit": json_values,
    "extra": st.one_of(json_values, nested()), "contexts": json_values, "user": json_values,
})
# Bodies a client might send as an event: mostly objects, sometimes anything else at the top.
events = st.one_of(event_dicts, event_dicts, json_values, nested())
ENCODINGS = ["utf-8"] * 8 + ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-be"]


@st.composite
def json_bytes(draw, values=events):
    """A JSON text as bytes, in any encoding ``json.loads`` would guess (lone surrogates kept as such)."""
    text = dump(draw(values), ensure_ascii=draw(st.booleans()))
    return text.encode(draw(st.sampled_from(ENCODINGS)), "surrogatepass")


def good_event_bytes(message: str = "fuzz") -> bytes:
    return json.dumps({"message": message, "level": "error"}).encode()


# -- envelopes ---------------------------------------------------------------------------------------------

ITEM_TYPES = ["event", "transaction", "attachment", "session", "sessions", "client_report", "unknown", "Event", ""]


@st.composite
def envelopes(draw, key: str):
    """An envelope: header line, items of (header line, payload), with lengths right, wrong or missing."""
    dsn = st.one_of(st.sampled_from([
        f"http://{key}@hookline.test/1", f"https://{key}:secret@hookline.test:9000/1", f"http://{key}@[::1/1",
        "http://[::1", "http://:@/", "not a url", f"http://{key}@host:99999999/1", "http://a b@h/1",
        f"{key}@hookline.test/1", "http://%zz@hookline.test/1", "http://" + "0" * 32 + "@hookline.test/1",
    ]), clean_scalars)
    header = draw(st.one_of(
        st.fixed_dictionaries({}, optional={"event_id": st.one_of(hex32, clean_scalars), "dsn": dsn,
                                           "sent_at": clean_scalars, "sdk": clean_values}),
        clean_values))
    parts = [dump(header, ensure_ascii=True).encode() if draw(st.integers(0, 9)) else draw(st.binary(max_size=30))]
    for _ in range(draw(st.integers(0, 3))):
        # The payloads' own variety is test_json_events' business; here it is the envelope's structure.
        payload = draw(st.one_of(json_bytes(json_values), st.binary(max_size=80), st.just(good_event_bytes())))
        item_header = draw(st.dictionaries(strings, clean_scalars, max_size=2))
        item_header["type"] = draw(st.one_of(st.sampled_from(ITEM_TYPES), clean_values))
        length = draw(st.one_of(
            st.just(len(payload)), st.just(len(payload)), st.none(), st.integers(-3, 3).map(lambda d: len(payload) + d),
            st.sampled_from([-1, 2**63, 10**20, 1.5, "5", True, None])))
        if length is not None or draw(st.booleans()):
            item_header["length"] = length
        parts.append(draw(st.sampled_from([b"\n", b"\n", b"\r\n", b""])))
        parts.append(dump(item_header, ensure_ascii=True).encode())
        parts.append(draw(st.sampled_from([b"\n", b"\n", b""])))
        parts.append(payload)
    parts.append(draw(st.sampled_from([b"", b"\n", b"\n\n"])))
    return b"".join(parts)


# -- the properties -----------------------------------------------------------------------------------------


@fuzz
@given(kind=st.sampled_from(["store", "envelope"]), body=st.binary(max_size=2000),
       prefix=st.sampled_from([b"", b"{}\n", b'{}\n{"type":"event"}\n', b'{"message":"', b"\x1f\x8b"]))
def test_arbitrary_bytes(ingest, kind, body, prefix):
    ingest.send(kind, prefix + body, auth_header(ingest.key))


@fuzz
@given(data=st.data(), key_in=st.sampled_from(["header", "dsn", "query", "none"]))
def test_structured_envelopes(ingest, data, key_in):
    body = data.draw(envelopes(ingest.key))
    headers = auth_header(ingest.key) if key_in == "header" else {}
    query = {"sentry_key": ingest.key} if key_in == "query" else {}
    ingest.send("envelope", body, headers, query)


@fuzz
@given(body=json_bytes(), as_envelope=st.booleans())
def test_json_events(ingest, body, as_envelope):
    if as_envelope:
        body = b'{}\n{"type":"event","length":%d}\n%b' % (len(body), body)
    ingest.send("envelope" if as_envelope else "store", body, auth_header(ingest.key))


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(data) + compressor.flush()


COMPRESSORS = {"gzip": gzip.compress, "deflate": zlib.compress, "raw-deflate": _raw_deflate, "br": brotli.compress,
               "none": lambda data: data}
CONTENT_ENCODINGS = ["gzip", "x-gzip", "deflate", "br", "identity", "", "GZIP", " gzip ", "zstd", "gzip, br",
                     "compress", "br;q=1", "deflate\t"]


# The name each compressor's output goes by; other names label it wrongly.
MATCHING_ENCODING = {"gzip": "gzip", "deflate": "deflate", "raw-deflate": "deflate", "br": "br", "none": "identity"}


@fuzz
@given(data=st.data(), compressor=st.sampled_from(sorted(COMPRESSORS)), matching=st.booleans(),
       damage=st.sampled_from(["none", "none", "none", "truncate", "flip", "append"]),
       kind=st.sampled_from(["store", "envelope"]))
def test_compressed_bodies(ingest, data, compressor, matching, damage, kind):
    if data.draw(st.integers(0, 3)):
        plain = data.draw(st.one_of(st.just(good_event_bytes()), json_bytes(), st.binary(max_size=300)))
    else:  # a long message: past the limit, it is a decompression bomb
        plain = good_event_bytes("x" * data.draw(st.integers(0, 30 * MAX_BYTES)))
    if kind == "envelope":
        plain = b'{}\n{"type":"event"}\n' + plain
    body = COMPRESSORS[compressor](plain)
    if damage == "truncate":
        body = body[: data.draw(st.integers(0, max(0, len(body) - 1)))]
    elif damage == "flip" and body:
        index = data.draw(st.integers(0, len(body) - 1))
        body = body[:index] + bytes([body[index] ^ data.draw(st.integers(1, 255))]) + body[index + 1 :]
    elif damage == "append":
        body += data.draw(st.binary(min_size=1, max_size=20))
    encoding = MATCHING_ENCODING[compressor] if matching else data.draw(st.sampled_from(CONTENT_ENCODINGS))
    ingest.send(kind, body, {**auth_header(ingest.key), "Content-Encoding": encoding})


header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60)


@st.composite
def credentials(draw, key: str):
    """Headers and query string carrying a key (right, wrong or mangled) in any of the places SDKs put it."""
    presented = draw(st.sampled_from([key] * 4 + [key.upper(), key[:-1], key + "0", "0" * 32, "", " " + key, "é"]))
    headers, query = {}, {}
    place = draw(st.sampled_from(["X-Sentry-Auth"] * 3 + ["Authorization", "query", "query", "none", "malformed"]))
    if place in ("X-Sentry-Auth", "Authorization"):
        prefix = draw(st.sampled_from(["Sentry ", "sentry ", "SENTRY ", "Sentry", "Bearer ", ""]))
        pairs = draw(st.sampled_from(["sentry_key={k}", "sentry_version=7, sentry_key={k}",
                                      "sentry_key = {k}", "sentry_key={k},sentry_secret=x", "sentry_key=\"{k}\""]))
        headers[place] = prefix + pairs.format(k=presented)
    elif place == "query":
        query["sentry_key"] = presented
    elif place == "malformed":
        headers[draw(st.sampled_from(["X-Sentry-Auth", "Authorization"]))] = draw(header_text)
    if draw(st.integers(0, 9)) == 0:
        headers["User-Agent"] = draw(st.sampled_from(["Hookline/0.1.0", "hookline/0.1.0", "sentry.python/2.0"]))
    return headers, query


PROJECT_IDS = ["0", "-1", "-0", "00", str(2**63 - 1), str(2**63), str(10**20), "1e3", "abc", " 1", "\uff11"]


@fuzz
@given(data=st.data(), kind=st.sampled_from(["store", "envelope"]), right_project=st.integers(0, 2))
def test_projects_and_credentials(ingest, data, kind, right_project):
    headers, query = data.draw(credentials(ingest.key))
    project = str(ingest.project_id) if right_project else quote(data.draw(st.sampled_from(PROJECT_IDS)))
    body = good_event_bytes(data.draw(strings))
    if kind == "envelope":
        body = b'{}\n{"type":"event"}\n' + body
    response = ingest.send(kind, body, headers, query, project=project)
    if response.status_code == 200:  # only the right key, sent where a key belongs, is let in
        assert ingest.key in headers.get("X-Sentry-Auth", "") + headers.get("Authorization", "") + query.get(
            "sentry_key", "")
        assert not headers.get("User-Agent", "").startswith("Hookline/")


def test_the_fuzz_does_get_events_in(ingest):
    """The properties above are only worth something if well-formed input is stored, not refused."""
    before = ingest.stored()
    response = ingest.send("store", good_event_bytes(), auth_header(ingest.key))
    assert response.status_code == 200 and ingest.processed.events == before.events + 1
