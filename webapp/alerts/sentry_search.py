"""Sentry's issue search syntax for the API: ``is:unresolved level:error checkout`` over title and culprit.

The dashboard's list reads its filters from form fields instead (``webapp/alerts/issue_search.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import or_, select

from ..models import ISSUE_STATUSES, LEVELS, Group, Project, utcnow

SORTS = {"date": Group.last_seen.desc(), "new": Group.first_seen.desc(), "freq": Group.times_seen.desc()}
PERIOD = re.compile(r"^(\d{1,4})([mhdw])$")
PERIOD_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class SearchError(ValueError):
    """The query cannot be understood; the message says which part and what is accepted."""


@dataclass
class IssueQuery:
    statuses: list[str] = field(default_factory=list)
    levels: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)


def parse_query(query: str) -> IssueQuery:
    """Read ``is:<status>``, ``level:<level>`` and free words (matched in title or culprit, all must match)."""
    parsed = IssueQuery()
    for token in query.split():
        key, colon, value = token.partition(":")
        if colon and key == "is":
            status = {"archived": "ignored"}.get(value, value)
            if status not in ISSUE_STATUSES:
                raise SearchError(f"query: is:{value} is not a status; use is:unresolved, is:resolved or is:ignored.")
            parsed.statuses.append(status)
        elif colon and key == "level":
            if value not in LEVELS:
                raise SearchError(f"query: level:{value} is not a level; use one of {', '.join(LEVELS)}.")
            parsed.levels.append(value)
        else:
            parsed.text.append(token)
    return parsed


def parse_period(value: str | None) -> timedelta | None:
    """``statsPeriod`` such as ``24h`` or ``14d`` (issues seen within it); empty means any time."""
    if not value:
        return None
    match = PERIOD.match(value)
    if not match:
        raise SearchError("statsPeriod: expected a number and a unit, such as 24h, 14d or 90m.")
    return timedelta(**{PERIOD_UNITS[match.group(2)]: int(match.group(1))})


def issue_search(organization_id: int, query: str, *, project_ids: list[int] | None = None, period: str | None = None,
                 sort: str = "date"):
    """Return the SELECT of the organisation's issues matching ``query``, newest activity first by default."""
    if sort not in SORTS:
        raise SearchError(f"sort: expected one of {', '.join(SORTS)}.")
    parsed = parse_query(query)
    since = parse_period(period)
    statement = select(Group).join(Project, Project.id == Group.project_id).where(
        Project.organization_id == organization_id)
    if project_ids is not None:
        statement = statement.where(Group.project_id.in_(project_ids))
    if parsed.statuses:
        statement = statement.where(Group.status.in_(parsed.statuses))
    if parsed.levels:
        statement = statement.where(Group.level.in_(parsed.levels))
    for word in parsed.text:
        pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        statement = statement.where(or_(Group.title.ilike(pattern, escape="\\"), Group.culprit.ilike(pattern, escape="\\")))
    if since is not None:
        statement = statement.where(Group.last_seen >= utcnow() - since)
    return statement.order_by(SORTS[sort], Group.id.desc())
