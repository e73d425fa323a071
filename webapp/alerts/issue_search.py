"""The issues list: search, filters, sort and pages, all read from (and written back to) the URL's query."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from sqlalchemy import exists, func, select

from ..core.extensions import db
from ..core.input_guard import parse_row_id
from ..models import ISSUE_STATUSES, LEVELS, Group, GroupEnvironment, Organization, Project

PAGE_SIZE = 25
STATUS_CHOICES = (*ISSUE_STATUSES, "all")
# Sort name → column, newest (or most) first; ties go to the newest issue (highest id) so pages never overlap.
SORTS = {"last_seen": Group.last_seen, "first_seen": Group.first_seen, "events": Group.times_seen}
SORT_LABELS = {"last_seen": "Last seen", "first_seen": "First seen", "events": "Events"}


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


def _filtered(organization: Organization, query: IssueQuery):
    statement = select(Group).join(Project, Group.project_id == Project.id).where(
        Project.organization_id == organization.id)
    if query.project:
        statement = statement.where(Project.slug == query.project)
    if query.status != "all":
        statement = statement.where(Group.status == query.status)
    if query.level:
        statement = statement.where(Group.level == query.level)
    if query.q:
        statement = statement.where(Group.title.icontains(query.q, autoescape=True)
                                    | Group.culprit.icontains(query.q, autoescape=True))
    if query.environment:
        # One probe of group_environment's unique (group_id, environment) index per candidate issue.
        statement = statement.where(exists().where(GroupEnvironment.group_id == Group.id,
                                                   GroupEnvironment.environment == query.environment))
    return statement


def search_issues(organization: Organization, query: IssueQuery) -> IssuePage:
    """Return one page of the organisation's issues that match ``query``, in its order, and how many match."""
    statement = _filtered(organization, query)
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
