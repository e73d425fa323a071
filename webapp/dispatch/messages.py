"""The request log read as messages: one webhook-id each, its attempts under it, and its state in words.

An attempt's entry names its message (webhook-id), its number out of how many, its outcome, and how it was sent
(a replay, a resend, a test alert). Two things it cannot know when it is written are read beside the log, in one
more round trip and only when a message needs them: when a retry is due (RQ's scheduled registry of the retry
queue, by the retry job's id, ``queues.retry_job_id``) and whether the message is kept while the app is disabled
(``keys.missed_deliveries``). A replay and a resend go under the message's own webhook-id, so a receiver can
de-duplicate: they are attempts of the same message, told apart by their marks.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from flask import current_app
from rq.registry import ScheduledJobRegistry

from .. import keys
from .events import EVENT_TYPES
from .queues import retry_job_id
from .request_log import is_error_code, status_class

MESSAGES_SHOWN = keys.REQUEST_LOG_SIZE
# A message's state, in the words the page and the API use.
STATES = {
    "delivered": "delivered",
    "retrying": "retrying",
    "gave_up": "gave up",
    "missed": "missed while disabled",
    "failed": "failed",  # a test alert: sent once, never retried
    "stopped": "stopped",  # a retry was due long ago and none was logged (dropped when re-enabled without replay)
}
HEX_ID = re.compile(r"[0-9a-f]{32}")
RETRY_GRACE = timedelta(minutes=10)  # how late a due retry may start (the workers promote scheduled jobs)


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

    def has_attempt(self, test) -> bool:
        return any(test(entry) for entry in self.attempts)


@dataclass(frozen=True)
class MessageQuery:
    """Which messages to read: the log's filters (a message matches if one of its attempts does) and a search."""

    event_type: str | None = None
    errors_only: bool = False
    status: str | None = None
    search: str | None = None  # a webhook-id, a Request-ID or an event id
    after: str | None = None  # only messages with an attempt logged after this date (the page's poller)


def read_messages(client, app_id: int, query: MessageQuery, now: datetime) -> list[Message]:
    """Return the app's newest messages that match ``query``, newest activity first.

    1. Read every entry of the log (both lists of every event type) and the count of kept messages; group the
       entries by webhook-id.
    2. Keep the messages that match the filters and the search (an event id is looked for in the bodies).
    3. Say each one's state; only then read what a state needs (the kept messages, the retries' due times).
    """
    names = [query.event_type] if query.event_type else list(EVENT_TYPES)
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.lrange(keys.request_log(app_id, name), 0, -1)
        pipe.lrange(keys.request_log_errors(app_id, name), 0, -1)
    pipe.llen(keys.missed_deliveries(app_id))
    *chunks, kept_count = pipe.execute()
    messages = group_attempts(raw for chunk in chunks for raw in chunk)
    kept = _kept_messages(client, app_id) if kept_count else {}
    for message_id, item in kept.items():  # kept before any attempt was made: a message with no attempts yet
        if message_id not in messages and item["event_type"] in names:
            messages[message_id] = Message(message_id, item["event_type"], [], kept_since=item["date"])
    found = [message for message in messages.values() if _matches(message, query)]
    if query.search:
        found = search_messages(client, app_id, found, query.search.strip(), names)
    found.sort(key=lambda message: message.date, reverse=True)
    found = found[:MESSAGES_SHOWN]
    say_states(client, found, kept, now)
    return found


def group_attempts(raws) -> dict[str, Message]:
    """Group raw log entries into messages by webhook-id (an entry logged without one is a message of its own)."""
    messages: dict[str, Message] = {}
    seen = set()
    for raw in raws:
        entry = json.loads(raw)
        if entry["request_id"] in seen:  # a failed attempt is on both lists
            continue
        seen.add(entry["request_id"])
        key = entry.get("message_id") or entry["request_id"]
        message = messages.get(key)
        if message is None:
            message = messages[key] = Message(entry.get("message_id"), entry["event_type"], [])
        message.attempts.append(entry)
    for message in messages.values():
        message.attempts.sort(key=lambda entry: entry["date"], reverse=True)
    return messages


def _matches(message: Message, query: MessageQuery) -> bool:
    if query.after and not message.has_attempt(lambda entry: entry["date"] > query.after):
        return False
    if query.errors_only and not message.has_attempt(lambda entry: is_error_code(entry["response_code"])):
        return False
    return not query.status or message.has_attempt(lambda entry: status_class(entry) == query.status)


def search_messages(client, app_id: int, messages: list[Message], text: str, names: list[str]) -> list[Message]:
    """Return the messages whose webhook-id or one of whose Request-IDs is ``text``, or else whose body holds it as
    an event id (read from the kept request bodies; a compressed one is opened only when needed)."""
    exact = [message for message in messages if text == message.message_id
             or message.has_attempt(lambda entry: entry["request_id"] == text)]
    if exact or not HEX_ID.fullmatch(text.replace("-", "").lower()):
        return exact
    event_id = text.replace("-", "").lower()
    request_ids = request_ids_with_event(client, app_id, event_id, names)
    return [message for message in messages if message.has_attempt(lambda entry: entry["request_id"] in request_ids)]


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


def say_states(client, messages: list[Message], kept: dict[str, dict], now: datetime) -> None:
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
        pipe.zscore(registry.key, retry_job_id(message.message_id, newest["attempt"], bool(newest.get("resend"))))
    for message, score in zip(waiting, pipe.execute()):
        if score is not None:
            due = datetime.fromtimestamp(score, timezone.utc)
            message.next_attempt_at = due.isoformat(timespec="seconds").replace("+00:00", "Z")
        elif _logged_at(message.newest) + latest_retry_delay(message.newest["attempt"]) + RETRY_GRACE < now:
            message.state = "stopped"


def latest_retry_delay(attempt: int) -> timedelta:
    """The longest a retry after attempt ``attempt`` waits: the schedule's step +20 %, or the Retry-After cap."""
    config = current_app.config
    schedule = config["WEBHOOK_RETRY_SCHEDULE"]
    step = schedule[min(attempt, len(schedule)) - 1] * 1.2
    return timedelta(seconds=max(step, config["WEBHOOK_RETRY_AFTER_CAP"]))


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


def _logged_at(entry: dict) -> datetime:
    return datetime.fromisoformat(entry["date"].replace("Z", "+00:00"))
