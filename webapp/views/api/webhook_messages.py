"""The request log through the API as messages: one webhook-id each, with its state and its attempts."""

from __future__ import annotations

from flask import request

from ...core.redis_store import get_redis
from ...dispatch.events import EVENT_TYPES
from ...dispatch.messages import SEARCH_LIMIT, Message, MessageQuery, read_messages
from ...dispatch.request_log import STATUS_CLASSES
from . import ApiError, bp, flag, paged
from .apps import app_or_404, serialize_request


@bp.route("/sentry-apps/<app_slug>/webhook-messages/")
def webhook_messages(app_slug):
    """The app's messages, newest activity first, filtered as the dashboard's log is and searched by id."""
    sentry_app, role = app_or_404(app_slug)
    query = MessageQuery(_choice("eventType", EVENT_TYPES), flag("errorsOnly"), _choice("status", STATUS_CLASSES),
                         (request.args.get("query") or "").strip()[:SEARCH_LIMIT] or None)
    messages = read_messages(get_redis(), sentry_app.id, query)
    organization = sentry_app.organization
    return paged(messages, lambda message: serialize_message(
        message, [serialize_request(entry, sentry_app, organization, role) for entry in message.attempts]))


def serialize_message(message: Message, attempts: list[dict]) -> dict:
    """A message: its webhook-id, state (a word and the sentence's facts), replays and resends, and attempts."""
    return {
        "webhookId": message.message_id,
        "eventType": message.event_type,
        "date": message.date,
        "state": message.state,
        "stateText": message.words,
        "nextAttemptAt": message.next_attempt_at,
        "kept": message.kept,
        "keptSince": message.kept_since,
        "missedWhileDisabled": message.missed_while_disabled,
        "replayedAs": [entry["request_id"] for entry in message.replays],
        "resentAs": [entry["request_id"] for entry in message.resends],
        "attempts": attempts,
    }


def _choice(name: str, allowed) -> str | None:
    value = request.args.get(name) or None
    if value is not None and value not in allowed:
        raise ApiError(400, f"{name}: must be one of {', '.join(allowed)}.")
    return value
