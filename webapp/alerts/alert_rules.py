"""Create and change issue alert rules and metric alert rules (validation lives here, not in views)."""

from __future__ import annotations

from sqlalchemy import select

from ..core.audit import changed_fields, record_audit
from ..core.extensions import db
from ..models import LEVELS, RULE_TRIGGERS, IssueAlertRule, MetricAlertRule, Project, SentryApp


class RuleValidationError(ValueError):
    """The rule cannot be saved; ``errors`` maps each bad field to a message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors


def parse_settings(text: str) -> list[dict]:
    """Parse ``name=value`` lines into Sentry's settings list ``[{"name": ..., "value": ...}]``."""
    settings = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"line {number} must look like name=value")
        settings.append({"name": name.strip(), "value": value.strip()})
    return settings


def format_settings(settings: list[dict]) -> str:
    return "\n".join(f"{item['name']}={item['value']}" for item in settings)


def parse_actions(form, organization_id: int) -> tuple[list[dict], dict[str, str]]:
    """Read ``app_<id>`` checkboxes and ``settings_<id>`` text areas; return the actions and what is wrong with them."""
    apps = db.session.scalars(select(SentryApp).where(SentryApp.organization_id == organization_id))
    actions, problems = [], []
    for sentry_app in apps:
        if not form.get(f"app_{sentry_app.id}"):
            continue
        try:
            settings = parse_settings(form.get(f"settings_{sentry_app.id}", ""))
        except ValueError as exc:
            problems.append(f"Settings for {sentry_app.name}: {exc}.")
            continue
        actions.append({"sentry_app_id": sentry_app.id, "settings": settings})
    if not actions and not problems:
        problems.append("Choose at least one app to send the alert to.")
    return actions, {"actions": " ".join(problems)} if problems else {}


def _int(fields: dict, name: str, errors: dict, *, low: int, high: int, optional: bool = False) -> int | None:
    raw = str(fields.get(name) or "").strip()
    if not raw and optional:
        return None
    try:
        value = int(raw)
    except ValueError:
        errors[name] = "Enter a whole number."
        return None
    if not low <= value <= high:
        errors[name] = f"Enter a number from {low} to {high}."
        return None
    return value


def _name(fields: dict, errors: dict) -> str:
    name = str(fields.get("name") or "").strip()
    if not name or len(name) > 64:
        errors["name"] = "Give the rule a name of at most 64 characters."
    return name


def save_issue_rule(project: Project, fields: dict, actions: list[dict], rule: IssueAlertRule | None = None,
                    errors: dict[str, str] | None = None, actor_id: int | None = None) -> IssueAlertRule:
    """Validate ``fields`` (name, trigger, min_level, frequency_minutes) and save the rule; audit; commit.

    ``errors`` are problems already found in the same form (its actions): they are raised together with the
    fields' own, so the person sees every one at once.
    """
    errors = dict(errors or {})
    name = _name(fields, errors)
    trigger = fields.get("trigger")
    if trigger not in RULE_TRIGGERS:
        errors["trigger"] = "Choose when the rule fires."
    min_level = fields.get("min_level") or None
    if min_level is not None and min_level not in LEVELS:
        errors["min_level"] = "Choose a level."
    frequency = _int(fields, "frequency_minutes", errors, low=1, high=43200)
    if errors:
        raise RuleValidationError(errors)
    rule = rule or IssueAlertRule(project_id=project.id)
    before = _audited_fields(rule) if rule.id else None
    rule.name, rule.trigger, rule.min_level, rule.frequency_minutes = name, trigger, min_level, frequency
    rule.actions = actions
    _audit_save(project, rule, before, actor_id)
    db.session.commit()
    return rule


def save_metric_rule(project: Project, fields: dict, actions: list[dict], rule: MetricAlertRule | None = None,
                     errors: dict[str, str] | None = None, actor_id: int | None = None) -> MetricAlertRule:
    """Validate ``fields`` (name, window, thresholds) and save the metric alert rule; audit; commit.

    An incident opens when the count reaches a threshold and closes when it falls below the resolve threshold,
    so warning < critical and resolve <= the lowest alert threshold (and at least 1: no count is below 0).
    ``errors`` as for ``save_issue_rule``.
    """
    errors = dict(errors or {})
    name = _name(fields, errors)
    window = _int(fields, "time_window_minutes", errors, low=1, high=1440)
    critical = _int(fields, "critical_threshold", errors, low=1, high=10**9)
    warning = _int(fields, "warning_threshold", errors, low=1, high=10**9, optional=True)
    resolve = _int(fields, "resolve_threshold", errors, low=1, high=10**9, optional=True)
    if critical is not None and warning is not None and warning >= critical:
        errors["warning_threshold"] = f"The warning threshold must be below the critical threshold ({critical})."
    lowest = min((threshold for threshold in (warning, critical) if threshold is not None), default=None)
    if resolve is not None and lowest is not None and resolve > lowest:
        errors["resolve_threshold"] = f"The resolve threshold must be at most {lowest}, the lowest alert threshold."
    if errors:
        raise RuleValidationError(errors)
    rule = rule or MetricAlertRule(project_id=project.id)
    before = _audited_fields(rule) if rule.id else None
    rule.name, rule.time_window_minutes = name, window
    rule.critical_threshold, rule.warning_threshold, rule.resolve_threshold = critical, warning, resolve
    rule.actions = actions
    _audit_save(project, rule, before, actor_id)
    db.session.commit()
    return rule


def delete_rule(project: Project, rule: IssueAlertRule | MetricAlertRule, actor_id: int | None) -> None:
    """Delete an issue or metric alert rule (a metric rule's incidents go with it); audit; commit."""
    record_audit(project.organization_id, f"{_event_prefix(rule)}.remove", actor_id=actor_id, target_object=rule.id,
                 target_label=rule.name, data={"project": project.slug})
    db.session.delete(rule)
    db.session.commit()


# What an audit entry of each kind of rule names, besides the apps it sends to.
AUDITED_COLUMNS = {
    IssueAlertRule: ("name", "trigger", "min_level", "frequency_minutes"),
    MetricAlertRule: ("name", "time_window_minutes", "critical_threshold", "warning_threshold", "resolve_threshold"),
}


def _event_prefix(rule) -> str:
    return "alert-rule" if isinstance(rule, IssueAlertRule) else "metric-alert-rule"


def _audited_fields(rule) -> dict:
    values = {column: getattr(rule, column) for column in AUDITED_COLUMNS[type(rule)]}
    values["apps"] = _action_names(rule.actions or [])
    return values


def _action_names(actions: list[dict]) -> list[str]:
    """Return each action as "App (name=value, …)", so a change of an app's settings shows too."""
    ids = [action["sentry_app_id"] for action in actions]
    rows = db.session.execute(select(SentryApp.id, SentryApp.name).where(SentryApp.id.in_(ids))) if ids else []
    names = {app_id: name for app_id, name in rows}
    described = []
    for action in actions:
        settings = ", ".join(f"{item['name']}={item['value']}" for item in action.get("settings") or [])
        name = names.get(action["sentry_app_id"], f"app {action['sentry_app_id']}")
        described.append(f"{name} ({settings})" if settings else name)
    return described


def _audit_save(project: Project, rule, before: dict | None, actor_id: int | None) -> None:
    """Add the rule to the session and audit its creation, or what an edit changed (nothing: no entry)."""
    db.session.add(rule)
    db.session.flush()
    after = _audited_fields(rule)
    data = {"project": project.slug, **after} if before is None else changed_fields(before, after)
    if before is None or data:
        action = "create" if before is None else "edit"
        record_audit(project.organization_id, f"{_event_prefix(rule)}.{action}", actor_id=actor_id,
                     target_object=rule.id, target_label=rule.name, data=data)
