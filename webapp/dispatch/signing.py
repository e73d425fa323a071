"""Sign webhook bodies the way Sentry does and the way Standard Webhooks does, with one secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from importlib import metadata

from rq import get_current_job


def sentry_signature(secret: str, body: bytes) -> str:
    """Return the ``Sentry-Hook-Signature`` value: lowercase hex HMAC-SHA256 of the body."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def standard_webhooks_secret(secret: str) -> str:
    """Return the ``whsec_`` form of ``secret``: its UTF-8 bytes, base64-encoded, are the HMAC key."""
    return "whsec_" + base64.b64encode(secret.encode("utf-8")).decode("ascii")


def standard_webhooks_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """Return one ``v1,<base64>`` signature of ``id.timestamp.body``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def _version() -> str:
    try:
        return metadata.version("hookline")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "0"


USER_AGENT_PREFIX = "Hookline/"
USER_AGENT = f"{USER_AGENT_PREFIX}{_version()}"


def new_message_id(*parts) -> str:
    """Return a ``webhook-id``: one per message, the same on every retry of it.

    Inside an RQ job, the id is derived from the job id and ``parts`` (what tells the job's messages
    apart), so a job that is re-run after a crash sends the same messages under the same ids.
    """
    job = get_current_job() if parts else None
    if job is None:
        return f"msg_{uuid.uuid4().hex}"
    return f"msg_{uuid.uuid5(uuid.NAMESPACE_URL, ':'.join(map(str, (job.id, *parts)))).hex}"


def build_headers(
    resource: str, body: bytes, secrets: list[str], message_id: str, now: float | None = None
) -> dict[str, str]:
    """Return the headers of one attempt; ``secrets[0]`` signs Sentry's header, all of them sign webhook-signature."""
    timestamp = int(time.time() if now is None else now)
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,  # also lets ingestion refuse Hookline's own deliveries (a webhook loop)
        "Request-ID": uuid.uuid4().hex,
        "Sentry-Hook-Resource": resource,
        "Sentry-Hook-Timestamp": str(timestamp),
        "Sentry-Hook-Signature": sentry_signature(secrets[0], body),
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            standard_webhooks_signature(secret, message_id, timestamp, body) for secret in secrets
        ),
    }
