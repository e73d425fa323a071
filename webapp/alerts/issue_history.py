"""An issue's history: its activity timeline and its events per day."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select

from ..core.extensions import db
from ..models import Activity, Event, Group, utcnow

CHART_DAYS = 14


def activity_of(group: Group, limit: int = 500) -> list[Activity]:
    """Return the issue's activity, oldest first (the newest ``limit`` entries)."""
    newest = db.session.scalars(select(Activity).where(Activity.group_id == group.id)
                                .order_by(Activity.date.desc(), Activity.id.desc()).limit(limit))
    return list(reversed(list(newest)))


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def events_per_day(group: Group, days: int = CHART_DAYS, today: date | None = None) -> list[tuple[date, int]]:
    """Return the issue's event count per UTC day for the last ``days`` days, today last (days without events: 0)."""
    today = today or utcnow().date()
    start = today - timedelta(days=days - 1)
    day = func.date(Event.received)
    rows = db.session.execute(
        select(day, func.count()).where(Event.group_id == group.id, Event.received >= datetime.combine(start, time()))
        .group_by(day)
    )
    counts = {_as_date(value): count for value, count in rows}
    return [(start + timedelta(days=offset), counts.get(start + timedelta(days=offset), 0)) for offset in range(days)]
