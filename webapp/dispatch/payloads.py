"""Build the JSON envelopes receivers get, in Sentry's shapes (SPEC section 4)."""

from __future__ import annotations

import json
import math
import uuid
from datetime import datetime, timezone

from ..models import SentryApp

# Kept verbatim: receivers written for Sentry may check it.
APPLICATION_ACTOR = {"type": "application", "id": "sentry", "name": "Sentry"}

TEST_RULE_ID = -1
TEST_RULE_LABEL = "Test Alert"


def encode(envelope: dict) -> bytes:
    """Return the body of a webhook: the envelope written as Sentry writes its own (``sentry.utils.json``).

    No space after ``,`` and ``:``, text outside ASCII as ``\\u`` escapes, NaN and infinities as ``null``.
    Receivers written from Sentry's docs sign the body they parsed and wrote again, not the bytes received:
    Python's ``json.dumps(body, separators=(",", ":"))`` gives back these exact bytes, and so does
    JavaScript's ``JSON.stringify`` for ASCII text (it writes other characters unescaped, as with Sentry).
    """
    try:
        text = json.dumps(envelope, separators=(",", ":"), allow_nan=False)
    except ValueError:  # a NaN or an infinity somewhere (a client's extra data): null, as Sentry writes them
        text = json.dumps(_finite(envelope), separators=(",", ":"))
    return text.encode("ascii")


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def build_envelope(action: str, installation_uuid: str, data: dict, actor: dict | None = None) -> dict:
    return {
        "action": action,
        "installation": {"uuid": installation_uuid},
        "data": data,
        "actor": actor or APPLICATION_ACTOR,
    }


def user_actor(user) -> dict:
    return {"type": "user", "id": user.id, "name": user.name or user.email}


def app_page_url(base_url: str, sentry_app: SentryApp) -> str:
    return f"{base_url}/orgs/{sentry_app.organization.slug}/apps/{sentry_app.slug}"


def build_test_alert(sentry_app: SentryApp, base_url: str, now: datetime | None = None) -> dict:
    """Return the ``event_alert.triggered`` envelope of a test alert (rule id -1).

    A test event is not stored, so every URL in it points at the app's page, which is where the
    person who pressed the button reads the result.
    """
    now = now or datetime.now(timezone.utc)
    page = app_page_url(base_url, sentry_app)
    title = "This is an example Python exception"
    event = {
        "event_id": uuid.uuid4().hex,
        "issue_id": str(TEST_RULE_ID),
        "title": title,
        "message": title,
        "culprit": "hookline.test_alert in send",
        "level": "error",
        "type": "error",
        "platform": "python",
        "datetime": now.isoformat().replace("+00:00", "Z"),
        "timestamp": now.timestamp(),
        "metadata": {"type": "Exception", "value": title},
        "tags": [["level", "error"], ["hookline.test", "true"]],
        "url": page,
        "web_url": page,
        "issue_url": page,
    }
    data = {
        "event": event,
        "triggered_rule": TEST_RULE_LABEL,
        "issue_alert": {
            "id": TEST_RULE_ID,
            "title": TEST_RULE_LABEL,
            "sentry_app_id": sentry_app.id,
            "settings": [],
        },
    }
    return build_envelope("triggered", sentry_app.installation.uuid, data)
