"""Issue alert rules: which rules an ingested event sets off, throttled per issue."""

from __future__ import annotations

from dataclasses import replace

from flask import current_app
from rq import get_current_job
from sqlalchemy import select

from ..core import keys
from ..core.extensions import db
from ..models import Event, IssueAlertRule, level_rank
from .eventstore import StoredEvent


def rule_matches(rule: IssueAlertRule, stored: StoredEvent, level: str) -> bool:
    """Say whether the rule's condition and level filter hold for the event."""
    if rule.trigger == "first_seen" and not stored.is_new_group:
        return False
    if rule.trigger == "regression" and not stored.is_regression:
        return False
    return rule.min_level is None or level_rank(level) >= level_rank(rule.min_level)


def claim_rule_fire(rule: IssueAlertRule, group_id: int) -> bool:
    """Take the rule's slot for this issue for ``frequency_minutes``; False if it fired within that time.

    The slot holds the id of the job that took it, so the same job re-run after a crash fires the rule again.
    """
    redis = current_app.extensions["redis"]
    job = get_current_job()
    holder = job.id if job is not None else "-"
    key = keys.rule_fired(rule.id, group_id)
    if redis.set(key, holder, nx=True, ex=max(60, rule.frequency_minutes * 60)):
        return True
    return job is not None and redis.get(key) == holder.encode()


def rules_to_fire(stored: StoredEvent) -> list[IssueAlertRule]:
    """Return the project's rules this event sets off, each claimed so a later event in the window does not."""
    event = db.session.get(Event, stored.event_id)
    if stored.is_regression and event.group.escalated_at is not None:
        # An ignored issue that came back escalated; "a resolved issue reappears" is not about it (as in Sentry).
        stored = replace(stored, is_regression=False)
    rules = db.session.scalars(select(IssueAlertRule).where(IssueAlertRule.project_id == event.project_id))
    return [rule for rule in rules if rule_matches(rule, stored, event.level) and claim_rule_fire(rule, stored.group_id)]
