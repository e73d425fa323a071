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
from .alerts import (
    INCIDENT_CHANGES,
    INCIDENT_STATUSES,
    RULE_TRIGGERS,
    Incident,
    IncidentStatusChange,
    IssueAlertRule,
    MetricAlertRule,
)
from .audit import AuditLogEntry
from .invitations import Invitation, PasswordReset
from .apps import RESOURCES, SentryApp, SentryAppInstallation
from .tokens import ApiToken
from .outbox import OutboxJob
from .issues import (
    ACTIVITY_KINDS,
    ISSUE_STATUSES,
    LEVELS,
    Activity,
    Comment,
    Event,
    Group,
    GroupEnvironment,
    Project,
    ProjectKey,
    Release,
    level_rank,
)

__all__ = [
    "ACTIVITY_KINDS",
    "Activity",
    "ApiToken",
    "AuditLogEntry",
    "INCIDENT_CHANGES",
    "INCIDENT_STATUSES",
    "ISSUE_STATUSES",
    "LEVELS",
    "RULE_TRIGGERS",
    "Comment",
    "Event",
    "Group",
    "GroupEnvironment",
    "Incident",
    "IncidentStatusChange",
    "Invitation",
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
    "PasswordReset",
    "SentryApp",
    "SentryAppInstallation",
    "User",
    "find_user_by_email",
    "slugify",
    "utcnow",
]
