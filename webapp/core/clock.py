"""The one clock Hookline reads for days and deadlines; tests replace ``now`` to drive time."""

from __future__ import annotations

from datetime import date, datetime, timezone


def now() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def today() -> date:
    """Return the current UTC day (health is counted per UTC day)."""
    return now().date()
