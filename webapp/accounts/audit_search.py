"""The audit log's filters (event, actor, time span) and its pages, all done in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import Select, select

from ..core.audit import EVENTS
from ..core.extensions import db
from ..models import AuditLogEntry, Membership, User

PAGE_SIZE = 50
MAX_PAGE = 10_000  # 500,000 entries back: further than anyone pages, and a bounded OFFSET
SYSTEM_ACTOR = "hookline"  # the actor filter's value for entries without a person: Hookline, failed logins


class AuditFilterError(ValueError):
    """A filter value cannot be used; ``errors`` maps each bad parameter to what is wrong with it."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(" ".join(f"{name}: {message}" for name, message in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class AuditFilters:
    """The filters of one view of the log; ``args`` are the query parameters that reproduce it."""

    event: str | None = None
    actor_id: int | None = None
    system_only: bool = False
    start: datetime | None = None  # naive UTC, inclusive
    end: datetime | None = None  # naive UTC, exclusive
    args: tuple[tuple[str, str], ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.args)


def parse_filters(args, organization_id: int) -> AuditFilters:
    """Read ``event``, ``actor``, ``start`` and ``end``; raise AuditFilterError naming every bad one."""
    errors: dict[str, str] = {}
    raw = {name: (args.get(name) or "").strip() for name in ("event", "actor", "start", "end")}
    event = raw["event"] or None
    if event is not None and event not in EVENTS:
        errors["event"] = f"unknown event {_quote(event)}; the events are {', '.join(EVENTS)}."
    actor_id, system_only = None, False
    if raw["actor"] == SYSTEM_ACTOR:
        system_only = True
    elif raw["actor"]:
        actor_id = _actor_id(raw["actor"], organization_id)
        if actor_id is None:
            errors["actor"] = (f"{_quote(raw['actor'])} is not the id of anyone in this organisation or its log "
                               f"(or {SYSTEM_ACTOR!r} for what no one logged in did).")
    start = _moment(raw["start"], "start", errors)
    end = _moment(raw["end"], "end", errors, end=True)
    if start and end and end <= start:
        errors["end"] = "must be after start."
    if errors:
        raise AuditFilterError(errors)
    return AuditFilters(event, actor_id, system_only, start, end,
                        tuple((name, value) for name, value in raw.items() if value))


def audit_statement(organization_id: int, filters: AuditFilters) -> Select:
    """Return the SELECT of the organisation's entries that pass ``filters``, newest first."""
    statement = select(AuditLogEntry).where(AuditLogEntry.organization_id == organization_id)
    if filters.event:
        statement = statement.where(AuditLogEntry.event == filters.event)
    if filters.actor_id is not None:
        statement = statement.where(AuditLogEntry.actor_id == filters.actor_id)
    if filters.system_only:
        statement = statement.where(AuditLogEntry.actor_id.is_(None))
    if filters.start:
        statement = statement.where(AuditLogEntry.datetime >= filters.start)
    if filters.end:
        statement = statement.where(AuditLogEntry.datetime < filters.end)
    # The id breaks ties between entries of the same instant, so pages neither overlap nor skip.
    return statement.order_by(AuditLogEntry.datetime.desc(), AuditLogEntry.id.desc())


@dataclass
class AuditPage:
    entries: list[AuditLogEntry]
    page: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def read_page(organization_id: int, filters: AuditFilters, page: int) -> AuditPage:
    """Return page ``page`` (from 1) of PAGE_SIZE entries; one row more is read to know whether another follows."""
    page = min(max(page, 1), MAX_PAGE)
    statement = audit_statement(organization_id, filters).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)
    rows = list(db.session.scalars(statement))
    return AuditPage(rows[:PAGE_SIZE], page, len(rows) > PAGE_SIZE)


def page_number(raw: str | None) -> int:
    """Return the page asked for; anything but a whole number from 1 is the first page."""
    raw = (raw or "").strip()
    return min(int(raw), MAX_PAGE) if raw.isascii() and raw.isdigit() and int(raw) >= 1 else 1


def actor_choices(organization_id: int) -> list[tuple[str, str]]:
    """Return (value, label) for the actor filter: the members and anyone else in the log, then Hookline."""
    in_log = select(AuditLogEntry.actor_id).where(AuditLogEntry.organization_id == organization_id).distinct()
    members = select(Membership.user_id).where(Membership.organization_id == organization_id)
    users = db.session.scalars(select(User).where(User.id.in_(members) | User.id.in_(in_log)).order_by(User.email))
    return [(str(user.id), user.email) for user in users] + [(SYSTEM_ACTOR, "Hookline (or no one logged in)")]


def _actor_id(raw: str, organization_id: int) -> int | None:
    if not (raw.isascii() and raw.isdigit() and int(raw) <= 2**31 - 1):  # past any id, and any database's integers
        return None
    user_id = int(raw)
    member = db.session.scalar(select(Membership.id).where(Membership.organization_id == organization_id,
                                                           Membership.user_id == user_id))
    acted = member or db.session.scalar(select(AuditLogEntry.id).where(
        AuditLogEntry.organization_id == organization_id, AuditLogEntry.actor_id == user_id).limit(1))
    return user_id if acted else None


def _moment(raw: str, name: str, errors: dict, end: bool = False) -> datetime | None:
    """Return a date (its start; the next day's for ``end``, so the day is included) or a time, as naive UTC."""
    if not raw:
        return None
    if "T" in raw:
        raw = raw.replace(" ", "+")  # a query string's unescaped "+" of a UTC offset arrives as a space
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return datetime.combine(day + timedelta(days=1 if end else 0), datetime.min.time())
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if moment.tzinfo is not None:
            moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
        return moment + timedelta(microseconds=1) if end else moment
    except (ValueError, OverflowError):
        errors[name] = f"{_quote(raw)} is not a date such as 2026-11-01 or a time such as 2026-11-01T12:00:00Z."
        return None


def _quote(raw: str) -> str:
    return repr(raw if len(raw) <= 40 else raw[:40] + "…")
