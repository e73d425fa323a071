"""What one attempt's result means: how it counts toward health and whether it is retried (SPEC section 5)."""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from ..core import clock
from .http import WebhookResponse

RETRY_WITH_AFTER = frozenset({429, 502, 503, 504})
FATAL = frozenset({410})


@dataclass(frozen=True)
class Outcome:
    kind: str  # "success", "error", "timeout" or "fatal"
    counted: bool  # counts toward the app's daily health
    retry: bool  # worth another attempt later
    retry_after: float | None = None  # seconds the receiver asked us to wait


def classify(response: WebhookResponse) -> Outcome:
    """Classify one attempt: 2xx success; no answer timeout; 410 fatal; 429/5xx retried errors; 3xx/4xx errors."""
    code = response.status_code
    if 200 <= code < 300:
        return Outcome("success", counted=True, retry=False)
    if code == 0:
        blocked = response.failure is not None and response.failure.kind == "blocked"
        # A destination refused by the address guard will be refused again: an error, not a timeout to retry.
        return Outcome("error" if blocked else "timeout", counted=True, retry=not blocked)
    if code in FATAL:
        return Outcome("fatal", counted=True, retry=False)
    if code in RETRY_WITH_AFTER:
        return Outcome("error", counted=code != 429, retry=True, retry_after=parse_retry_after(response.headers))
    if code >= 500:
        return Outcome("error", counted=True, retry=True)
    return Outcome("error", counted=True, retry=False)


def parse_retry_after(headers: dict[str, str]) -> float | None:
    """Return the seconds a ``Retry-After`` header asks for (delta seconds or an HTTP date), or None."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value)) if value.isdecimal() and value.isascii() else max(
            0.0, (parsedate_to_datetime(value) - clock.now()).total_seconds())
    except (TypeError, ValueError, OverflowError):
        return None
