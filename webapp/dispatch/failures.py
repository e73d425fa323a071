"""Plain words for an attempt that got no usable answer: what happened, in one line, and what to check.

These are the only failure texts a user sees; a library's own exception text stays in the worker's log.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

# What went wrong, for the log's status column and its status-class filter.
LABELS = {
    "refused": "refused",
    "dns": "host not found",
    "tls": "TLS error",
    "timeout": "timeout",
    "redirect": "redirect",
    "blocked": "blocked",
    "reset": "closed",
    "invalid": "invalid answer",
    "other": "failed",
}
LOCATION_LIMIT = 200


@dataclass(frozen=True)
class Failure:
    kind: str  # one of LABELS
    message: str  # what happened, one line
    hint: str  # what to check

    def as_dict(self) -> dict:
        return asdict(self)


def describe(kind: str, url: str, *, timeout: float | None = None, status: int | None = None,
             location: str | None = None, detail: str | None = None) -> Failure:
    """Return the plain explanation of a failure of ``kind`` when sending to ``url``.

    ``detail`` is Hookline's own wording of a refused destination or an invalid answer (never a library's text); ``location`` is
    a redirect's target as the receiver sent it (shown escaped, cut to LOCATION_LIMIT characters).
    """
    parts = urlsplit(url)
    host = parts.hostname or url
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 443 if parts.scheme == "https" else 80
    if kind == "refused":
        return Failure(kind, f"Connection refused: nothing accepted the connection on {host} port {port}.",
                       f"Is the receiver running and listening on port {port}?")
    if kind == "dns":
        return Failure(kind, f"Host not found: {host} does not resolve to an address (DNS).",
                       "Check the host name in the webhook URL for typos, and that its DNS record exists.")
    if kind == "tls":
        return Failure(kind, f"TLS error: a secure connection to {host} could not be set up.",
                       f"Does {host} serve HTTPS on port {port} with a valid, unexpired certificate for that name?")
    if kind == "timeout":
        seconds = f"{timeout:g} s" if timeout is not None else "the time limit"
        return Failure(kind, f"Timed out after {seconds}: {host} did not answer in time.",
                       f"Answer within {seconds}: acknowledge the webhook first, then do the slow work.")
    if kind == "redirect":
        target = (location or "")[:LOCATION_LIMIT]
        where = f" to {target}" if target else ""
        return Failure(kind, f"Redirect not followed: the receiver answered {status}{where}; webhooks never follow "
                             "redirects.",
                       f"Set the webhook URL to {target}." if target else
                       "Set the webhook URL to the address the receiver redirects to.")
    if kind == "blocked":
        reason = detail or f"{host} is an address webhooks may not reach"
        return Failure(kind, f"Blocked destination: {reason}.",
                       "Use a public address, or allow this one with WEBHOOK_ALLOW_PRIVATE or "
                       "WEBHOOK_ALLOWED_NETWORKS.")
    if kind == "invalid":
        what = f" ({detail})" if detail else ""
        return Failure(kind, f"Invalid answer: {host} answered with something that is not valid HTTP{what}.",
                       "Check the receiver's framework or any proxy in front of it: it must send one well-formed "
                       "HTTP/1.1 answer.")
    if kind == "reset":
        return Failure(kind, f"Connection closed: {host} closed the connection without answering.",
                       "Check the receiver's log for a crash, and any proxy in front of it.")
    return Failure("other", f"Request failed: no answer could be read from {host}.",
                   "The worker's log has the technical details (search for the Request-ID).")


def label_of(entry: dict) -> str:
    """Return the status column's text for a log entry: the HTTP status, or what kept it from getting one."""
    code = entry["response_code"]
    if code:
        return str(code)
    failure = entry.get("failure")
    return LABELS.get(failure["kind"], "failed") if failure else "timeout"  # logged before failures were explained
