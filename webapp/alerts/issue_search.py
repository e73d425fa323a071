"""Finding an organisation's issues: one filter (``issues_matching``) that two readers fill in.

The dashboard's list reads it from form fields (``IssueQuery``: search words, project, status, level, environment,
sort and page, all read from and written back to the URL's query); the API reads Sentry's search syntax
(``issue_search``: ``is:unresolved level:error checkout`` with ``statsPeriod`` and Sentry's sort names). Either way
free words must all match, each in the title or the culprit, as characters (``%`` and ``_`` are not wildcards).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select

from ..core.extensions import db
from ..core.input_guard import parse_row_id
from ..models import ISSUE_STATUSES, LEVELS, Group, GroupEnvironment, Organization, Project, utcnow

PAGE_SIZE = 25
STATUS_CHOICES = (*ISSUE_STATUSES, "all")
# Sort name → column, newest (or most) first; ties go to the newest issue (highest id) so pages never overlap.
SORTS = {"last_seen": Group.last_seen, "first_seen": Group.first_seen, "events": Group.times_seen}
SORT_LABELS = {"last_seen": "Last seen", "first_seen": "First seen", "events": "Events"}
# The same orders under the names Sentry's API takes.
SENTRY_SORTS = {"date": SORTS["last_seen"], "new": SORTS["first_seen"], "freq": SORTS["events"]}
PERIOD = re.compile(r"^(\d{1,4})([mhdw])$")
PERIOD_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class IssueFilter:
    """Which issues of an organisation to find; an empty field does not filter."""

    project_ids: tuple[int, ...] | None = None
    project_slug: str = ""
    statuses: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    environment: str = ""
    seen_since: datetime | None = None


def issues_matching(organization_id: int, wanted: IssueFilter):
    """Return the SELECT of the organisation's issues that ``wanted`` describes (unordered)."""
    statement = select(Group).join(Project, Group.project_id == Project.id).where(
        Project.organization_id == organization_id)
    if wanted.project_ids is not None:
        statement = statement.where(Group.project_id.in_(wanted.project_ids))
    if wanted.project_slug:
        statement = statement.where(Project.slug == wanted.project_slug)
    if wanted.statuses:
        statement = statement.where(Group.status.in_(wanted.statuses))
    if wanted.levels:
        statement = statement.where(Group.level.in_(wanted.levels))
    for word in wanted.words:
        statement = statement.where(Group.title.icontains(word, autoescape=True)
                                    | Group.culprit.icontains(word, autoescape=True))
    if wanted.environment:
        # One probe of group_environment's unique (group_id, environment) index per candidate issue.
        statement = statement.where(exists().where(GroupEnvironment.group_id == Group.id,
                                                   GroupEnvironment.environment == wanted.environment))
    if wanted.seen_since is not None:
        statement = statement.where(Group.last_seen >= wanted.seen_since)
    return statement


@dataclass(frozen=True)
class IssueQuery:
    """What the list shows; every field is a query parameter, so a link reproduces the view."""

    q: str = ""
    project: str = ""  # a project slug; "" means every project of the organisation
    status: str = "unresolved"
    level: str = ""
    environment: str = ""
    sort: str = "last_seen"
    page: int = 1

    @classmethod
    def from_args(cls, args) -> IssueQuery:
        """Read the query from request arguments; an unknown value falls back to its default."""
        default = cls()
        page = args.get("page", "1")
        return cls(
            q=args.get("q", "").strip()[:200],
            project=args.get("project", "").strip(),
            status=args.get("status") if args.get("status") in STATUS_CHOICES else default.status,
            level=args.get("level") if args.get("level") in LEVELS else "",
            environment=args.get("environment", "").strip()[:64],
            sort=args.get("sort") if args.get("sort") in SORTS else default.sort,
            page=parse_row_id(page) or 1,  # ASCII digits only ("²" is a digit to isdigit(), not to int())
        )

    def args(self, **changes) -> dict:
        """Return the query parameters of this view (with ``changes``), leaving out the defaults."""
        default = asdict(IssueQuery())
        return {key: value for key, value in asdict(replace(self, **changes)).items() if value != default[key]}

    def as_filter(self) -> IssueFilter:
        return IssueFilter(project_slug=self.project, statuses=() if self.status == "all" else (self.status,),
                           levels=(self.level,) if self.level else (), words=tuple(self.q.split()),
                           environment=self.environment)

    @property
    def is_filtered(self) -> bool:
        return bool(self.q or self.project or self.level or self.environment)


@dataclass
class IssuePage:
    groups: list[Group]
    total: int
    page: int
    pages: int

    def nearby(self, width: int = 2) -> list[int]:
        """Return the page numbers to link: the first, the last, and ``width`` either side of this one."""
        numbers = {1, self.pages, *range(self.page - width, self.page + width + 1)}
        return sorted(number for number in numbers if 1 <= number <= self.pages)


def search_issues(organization: Organization, query: IssueQuery) -> IssuePage:
    """Return one page of the organisation's issues that match ``query``, in its order, and how many match."""
    statement = issues_matching(organization.id, query.as_filter())
    total = db.session.scalar(select(func.count()).select_from(statement.order_by(None).subquery())) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(query.page, pages)
    column = SORTS[query.sort]
    groups = db.session.scalars(statement.order_by(column.desc(), Group.id.desc())
                                .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE))
    return IssuePage(list(groups), total, page, pages)


def environments_of(organization: Organization, project_slug: str = "") -> list[str]:
    """Return the environments the organisation's issues (or one project's) have had events in."""
    statement = (select(GroupEnvironment.environment).join(Project, GroupEnvironment.project_id == Project.id)
                 .where(Project.organization_id == organization.id).distinct().order_by(GroupEnvironment.environment))
    if project_slug:
        statement = statement.where(Project.slug == project_slug)
    return list(db.session.scalars(statement))


def current_project(projects: list[Project], query: IssueQuery) -> Project | None:
    return next((project for project in projects if project.slug == query.project), None)


# Sentry's search syntax, for the API.


class SearchError(ValueError):
    """The query cannot be understood; the message says which part and what is accepted."""


def parse_query(query: str) -> IssueFilter:
    """Read ``is:<status>``, ``level:<level>`` and free words (matched in title or culprit, all must match)."""
    statuses, levels, words = [], [], []
    for token in query.split():
        key, colon, value = token.partition(":")
        if colon and key == "is":
            status = {"archived": "ignored"}.get(value, value)
            if status not in ISSUE_STATUSES:
                raise SearchError(f"query: is:{value} is not a status; use is:unresolved, is:resolved or is:ignored.")
            statuses.append(status)
        elif colon and key == "level":
            if value not in LEVELS:
                raise SearchError(f"query: level:{value} is not a level; use one of {', '.join(LEVELS)}.")
            levels.append(value)
        else:
            words.append(token)
    return IssueFilter(statuses=tuple(statuses), levels=tuple(levels), words=tuple(words))


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
    if sort not in SENTRY_SORTS:
        raise SearchError(f"sort: expected one of {', '.join(SENTRY_SORTS)}.")
    since = parse_period(period)
    wanted = replace(parse_query(query), project_ids=tuple(project_ids) if project_ids is not None else None,
                     seen_since=utcnow() - since if since is not None else None)
    return issues_matching(organization_id, wanted).order_by(SENTRY_SORTS[sort].desc(), Group.id.desc())
