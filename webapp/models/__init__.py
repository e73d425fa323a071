"""SQL models. Import them from here: ``from webapp.models import SentryApp``."""

from .accounts import (
    MANAGING_ROLES,
    ROLES,
    Membership,
    Organization,
    User,
    find_user_by_email,
    slugify,
    utcnow,
)
from .alerts import INCIDENT_STATUSES, RULE_TRIGGERS, Incident, IssueAlertRule, MetricAlertRule
from .audit import AuditLogEntry
from .apps import RESOURCES, SentryApp, SentryAppInstallation
from .tokens import ApiToken
from .outbox import OutboxJob
from .issues import ISSUE_STATUSES, LEVELS, Comment, Event, Group, Project, ProjectKey, level_rank

__all__ = [
    "ApiToken",
    "AuditLogEntry",
    "INCIDENT_STATUSES",
    "ISSUE_STATUSES",
    "LEVELS",
    "RULE_TRIGGERS",
    "Comment",
    "Event",
    "Group",
    "Incident",
    "IssueAlertRule",
    "MetricAlertRule",
    "Project",
    "ProjectKey",
    "level_rank",
    "MANAGING_ROLES",
    "RESOURCES",
    "ROLES",
    "Membership",
    "Organization",
    "OutboxJob",
    "SentryApp",
    "SentryAppInstallation",
    "User",
    "find_user_by_email",
    "slugify",
    "utcnow",
]
