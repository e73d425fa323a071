"""The request log read as messages: one webhook-id each, its attempts under it, and its state in words.

An attempt's entry names its message (webhook-id), its number out of how many, its outcome, and how it was sent
(a replay, a resend, a test alert). Two things it cannot know when it is written are read beside the log, each
in one more round trip and only when needed: whether the message is kept while the app is disabled
(``keys.missed_deliveries``, read when it holds any) and when a retry is due (RQ's scheduled registry of the retry
queue, by the retry job's id, ``queues.retry_job_id``; read for the messages waiting for one). The write path is
unchanged by this view. A replay and a resend go under the message's own webhook-id, so a receiver can
de-duplicate: they are attempts of the same message, told apart by their marks.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone

from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry

from ..core import keys
from .events import EVENT_TYPES
from .queues import retry_job_id
from .request_log import is_error_code, raw_date, status_class

MESSAGES_SHOWN = keys.REQUEST_LOG_SIZE
SEARCH_LIMIT = 200  # characters of a search kept: every id searched for is far shorter
# A message's state, in the words the page and the API use.
STATES = {
    "delivered": "delivered",
    "retrying": "retrying",
    "gave_up": "gave up",
    "missed": "missed while disabled",
    "failed": "failed",  # a test alert: sent once, never retried
    "stopped": "stopped",  # its retry ran and logged nothing: kept while disabled, dropped on re-enable
}
HEX_ID = re.compile(r"[0-9a-f]{32}")
# The states of a retry job that will not make another attempt (RQ's own Retry reschedules a crashed one).
RAN = {JobStatus.FINISHED.value, JobStatus.FAILED.value, JobStatus.STOPPED.value, JobStatus.CANCELED.value}


@dataclass
class Message:
    """One webhook-id: its attempts (newest first; replays and resends among them) and what became of it."""

    message_id: str | None
    event_type: str
    attempts: list[dict]
    state: str = "delivered"
    next_attempt_at: str | None = None  # when ``state`` is "retrying": the scheduled time, or None if due now
    kept: bool = False  # kept while the app is disabled, to be sent when it is re-enabled with replay
    kept_since: str | None = None

    @property
    def date(self) -> str:
        return self.attempts[0]["date"] if self.attempts else self.kept_since or ""

    @property
    def newest(self) -> dict | None:
        return self.attempts[0] if self.attempts else None

    @property
    def words(self) -> str:
        return STATES[self.state]

    @property
    def replays(self) -> list[dict]:
        """The first attempt of each replay, oldest first: the message was missed while disabled, then replayed."""
        return [entry for entry in reversed(self.attempts) if entry.get("replay") and entry.get("attempt") == 1]

    @property
    def resends(self) -> list[dict]:
        """The first attempt of each resend, oldest first."""
        return [entry for entry in reversed(self.attempts) if entry.get("resend") and entry.get("attempt") == 1]

    @property
    def missed_while_disabled(self) -> bool:
        return self.kept or bool(self.replays)


@dataclass(frozen=True)
class MessageQuery:
    """Which messages to read: the log's filters (a message matches if one of its attempts does) and a search."""

    event_type: str | None = None
    errors_only: bool = False
    status: str | None = None
    search: str | None = None  # a webhook-id, a Request-ID or an event id
    after: str | None = None  # only messages with an attempt logged after this date (the page's poller)


def read_messages(client, app_id: int, query: MessageQuery) -> list[Message]:
    """Return the app's newest messages that match ``query``, newest activity first.

    1. Read the log's entries (the lists of every attempt; the errors lists too, which reach further back, when
       failures or an id are looked for) and the count of kept messages.
    2. Group the entries by webhook-id, read off their raw JSON (``add_request`` writes the date first; the ids are
       found by their keys): up to 3,000 entries are read, only the shown messages' ones are parsed.
    3. Keep the newest MESSAGES_SHOWN that match the filters and the search (an event id is looked for in the
       kept bodies), with the messages kept while the app is disabled that were never attempted.
    4. Say each one's state; only then read what a state needs (the retries' due times).
    """
    names = [query.event_type] if query.event_type else list(EVENT_TYPES)
    with_errors = bool(query.errors_only or query.search or query.status not in (None, "2xx"))
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.lrange(keys.request_log(app_id, name), 0, -1)
        if with_errors:
            pipe.lrange(keys.request_log_errors(app_id, name), 0, -1)
    pipe.llen(keys.missed_deliveries(app_id))
    *chunks, kept_count = pipe.execute()
    errors = {raw for chunk in chunks[1::2] for raw in chunk} if with_errors else set()  # the same bytes on both
    # Newest first; entries of the same time stay in their list's order, which is newest first.
    dated = sorted(((raw_date(raw), raw) for raw in dict.fromkeys(raw for chunk in chunks for raw in chunk)),
                   key=lambda pair: pair[0], reverse=True)
    groups: dict[bytes, tuple[bytes, list[bytes]]] = {}  # key: the webhook-id (else the Request-ID), newest first
    for date, raw in dated:
        key = _raw_field(raw, b'"message_id": "') or _raw_field(raw, b'"request_id": "')
        groups.setdefault(key, (date, []))[1].append(raw)
    kept = _kept_messages(client, app_id) if kept_count else {}
    order = [(date, key) for key, (date, _) in groups.items()]
    if not (query.after or query.errors_only or query.status):  # never attempted: no attempt to match a filter
        order += [(item["date"].encode(), message_id.encode()) for message_id, item in kept.items()
                  if message_id.encode() not in groups and item["event_type"] in names]
    order.sort(reverse=True)
    after = query.after.encode() if query.after else None
    search = _Search(client, app_id, query.search.strip(), names) if query.search else None
    found = []
    for date, key in order:
        raws = groups[key][1] if key in groups else []
        if after and date <= after:
            break  # newest activity first: none after this one is newer
        if query.errors_only and not any(raw in errors for raw in raws):
            continue
        if search and not search.matches(key, raws):
            continue
        attempts = [json.loads(raw) for raw in raws]
        if query.status and not any(status_class(entry) == query.status for entry in attempts):
            continue
        if attempts:
            found.append(Message(attempts[0].get("message_id"), attempts[0]["event_type"], attempts))
        else:
            item = kept[key.decode()]
            found.append(Message(key.decode(), item["event_type"], [], kept_since=item["date"]))
        if len(found) == MESSAGES_SHOWN:
            break
    say_states(client, found, kept)
    return found


class _Search:
    """A search for a whole webhook-id or Request-ID, or else an event id in the kept bodies (read once, if asked)."""

    def __init__(self, client, app_id: int, text: str, names: list[str]):
        self.client, self.app_id, self.text, self.names = client, app_id, text, names
        self.event_id = text.replace("-", "").lower() if HEX_ID.fullmatch(text.replace("-", "").lower()) else None
        self._event_requests: set[str] | None = None

    def matches(self, key: bytes, raws: list[bytes]) -> bool:
        request_ids = [_raw_field(raw, b'"request_id": "').decode() for raw in raws]
        if self.text == key.decode() or self.text in request_ids:
            return True
        if self.event_id is None:
            return False
        if self._event_requests is None:
            self._event_requests = request_ids_with_event(self.client, self.app_id, self.event_id, self.names)
        return any(request_id in self._event_requests for request_id in request_ids)


def request_ids_with_event(client, app_id: int, event_id: str, names: list[str]) -> set[str]:
    """Return the Request-IDs whose kept body names the event id ``event_id`` (as ``"event_id": "<id>"``)."""
    needle = f'"event_id": "{event_id}"'
    compact = f'"event_id":"{event_id}"'
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.lrange(keys.request_details(app_id, name), 0, -1)
        pipe.lrange(keys.request_details_errors(app_id, name), 0, -1)
    found = set()
    for raw in (raw for chunk in pipe.execute() for raw in chunk):
        has_id = event_id.encode() in raw
        if not has_id and b'"body_z"' not in raw:
            continue
        record = json.loads(raw)
        body = record.get("body") or record.get("body_preview") or ""
        if "body_z" in record:
            body = zlib.decompress(base64.b64decode(record["body_z"])).decode("utf-8")
        if needle in body or compact in body:
            found.add(record["request_id"])
    return found


def say_states(client, messages: list[Message], kept: dict[str, dict]) -> None:
    """Set each message's state from its newest attempt, reading the due times of the retries waiting."""
    waiting = []
    for message in messages:
        newest = message.newest
        if message.message_id in kept:
            message.state, message.kept, message.kept_since = "missed", True, kept[message.message_id]["date"]
        elif not is_error_code(newest["response_code"]):
            message.state = "delivered"
        elif newest.get("test") or (newest.get("max_attempts") or 1) <= 1:
            message.state = "failed"
        elif newest.get("delivery_failed") or newest["attempt"] >= newest["max_attempts"]:
            message.state = "gave_up"
        else:
            message.state = "retrying"
            waiting.append(message)
    if not waiting:
        return
    registry = ScheduledJobRegistry(keys.RETRY_QUEUE, connection=client)
    pipe = client.pipeline(transaction=False)
    for message in waiting:
        newest = message.newest
        job_id = retry_job_id(message.message_id, newest["attempt"], bool(newest.get("resend")))
        pipe.zscore(registry.key, job_id)
        pipe.hget(Job.key_for(job_id), "status")
    answers = pipe.execute()
    for message, score, status in zip(waiting, answers[::2], answers[1::2]):
        if score is not None:
            due = datetime.fromtimestamp(score, timezone.utc)
            message.next_attempt_at = due.isoformat(timespec="seconds").replace("+00:00", "Z")
        elif status is None or status.decode() in RAN:
            # The retry ran (or is gone) and logged no attempt: it found the app disabled and the message was kept,
            # then dropped when the app was re-enabled without replay.
            message.state = "stopped"
        # else: queued, started or waiting for the app's turn: due now


def _kept_messages(client, app_id: int) -> dict[str, dict]:
    """Return the messages kept while the app is disabled, by webhook-id: event type and date (UTC, ``Z``)."""
    kept = {}
    for raw in client.lrange(keys.missed_deliveries(app_id), 0, -1):
        item = json.loads(raw)
        date = datetime.fromisoformat(item["date"])
        date = date.astimezone(timezone.utc).replace(tzinfo=None) if date.tzinfo else date
        kept.setdefault(item["message_id"], {"event_type": item["event_type"],
                                             "date": date.isoformat(timespec="microseconds") + "Z"})
    return kept


def _raw_field(raw: bytes, needle: bytes) -> bytes | None:
    """Read a string field (``needle`` is its ``"name": "``) off an entry's raw JSON without parsing it: a key is
    unique, as inside other strings quotes are escaped."""
    start = raw.find(needle)
    if start < 0:
        return None
    start += len(needle)
    return raw[start:raw.find(b'"', start)]
