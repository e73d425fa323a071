"""RQ jobs: thin wrappers that load by id and call the dispatcher. Jobs take ids (and plain data), never ORM objects."""

from __future__ import annotations

import logging
import smtplib

import flask_mail
from flask import current_app
from flask_mail import Message
from rq import get_current_job
from sqlalchemy import select

from ..alerts.eventstore import StoredEvent, record_group_environment
from ..alerts.incidents import OnChange, evaluate_rule, resolve_incident, tick_moments
from ..alerts.rules import rules_to_fire
from ..alerts.serializers import (
    STATUS_METHOD_MANUAL, STATUS_METHOD_RULE_TRIGGERED, serialize_event, serialize_incident, serialize_issue,
)
from ..core import keys
from ..core.extensions import db
from ..core.names import one_line
from ..core.outages import TransientFailure
from ..core.outbox import enqueue_after_commit
from ..core.redis_store import get_redis
from ..models import Event, Incident, IssueAlertRule, MetricAlertRule, SentryApp, User, utcnow
from .delivery import deliver_webhook
from .fanout import notify_resource_change
from .payloads import build_test_alert
from .queues import app_caps, task_spec
from .signing import new_message_id
from .webhooks import send_and_save_webhook_request

__all__ = ["deliver_webhook"]  # the delivery job lives in delivery.py; RQ finds it by this module's path

logger = logging.getLogger(__name__)

EXCERPT_CHARS = 300


def send_test_alert(sentry_app_id: int) -> dict:
    """Send a test ``event_alert.triggered`` to the app once (no retries) and return the outcome."""
    sentry_app = db.session.get(SentryApp, sentry_app_id)
    if sentry_app is None:
        logger.info("test_alert.missing_app sentry_app_id=%s", sentry_app_id)
        return {"outcome": "missing", "error": "The app was deleted before the test alert was sent."}
    envelope = build_test_alert(sentry_app, current_app.config["BASE_URL"])
    job = get_current_job()
    try:
        response = send_and_save_webhook_request(
            sentry_app, "event_alert.triggered", envelope, count_health=False,
            log_extra={"test": True, "job_id": job.id if job else None},
        ).response
    finally:
        if job is not None:  # the next press queues a new test alert
            _forget_pending_test_alert(sentry_app_id, job.id)
    failure = response.failure
    return {
        # "timeout" only when the receiver was reached and kept silent: a refused, blocked or unresolvable address
        # is an error, with the failure saying which.
        "outcome": "success" if response.is_success else ("timeout" if failure and failure.kind == "timeout"
                                                          else "error"),
        "response_code": response.status_code,
        "duration_ms": response.duration_ms,
        "excerpt": (response.body or (failure.message if failure else ""))[:EXCERPT_CHARS],
        "failure": failure.as_dict() if failure else None,
    }


def _forget_pending_test_alert(sentry_app_id: int, job_id: str) -> None:
    redis = get_redis()
    key = keys.test_alert_pending(sentry_app_id)
    if (redis.get(key) or b"").decode() == job_id:
        redis.delete(key)


def send_alert_event(event_pk: int, rule_id: int, sentry_app_id: int, settings: list | None = None,
                     message_id: str | None = None) -> str | None:
    """Deliver ``event_alert.triggered`` for a stored event that set off an issue alert rule.

    ``message_id`` is chosen when the alert fires, so a re-run of this job sends the same webhook-id.
    """
    event = db.session.get(Event, event_pk)
    rule = db.session.get(IssueAlertRule, rule_id)
    if event is None or rule is None:
        logger.info("alert_event.missing event=%s rule=%s", event_pk, rule_id)
        return None
    data = {"event": serialize_event(event, current_app.config["BASE_URL"]), "triggered_rule": rule.name}
    if settings:
        data["issue_alert"] = {"id": rule.id, "title": rule.name, "sentry_app_id": sentry_app_id, "settings": settings}
    return deliver_webhook(sentry_app_id, "event_alert.triggered", data, None, message_id,
                           organization_id=rule.project.organization_id)


def send_incident_alert_notification(sentry_app_id: int, incident_id: int, status: str, metric_value: int,
                                     message_id: str | None = None,
                                     status_method: int = STATUS_METHOD_RULE_TRIGGERED) -> str | None:
    """Deliver ``metric_alert.<status>`` for an incident that opened or changed status (by its rule, or by hand)."""
    incident = db.session.get(Incident, incident_id)
    if incident is None:
        logger.info("metric_alert.missing_incident incident=%s", incident_id)
        return None
    data = serialize_incident(incident, current_app.config["BASE_URL"], status, metric_value, status_method)
    return deliver_webhook(sentry_app_id, f"metric_alert.{status}", data, None, message_id,
                           organization_id=incident.organization_id)


class TimedSMTPConnection(flask_mail.Connection):
    """Flask-Mail's connection with a socket timeout (``MAIL_TIMEOUT``): a silent server cannot hold a worker."""

    def __init__(self, mail_state, timeout: float):
        super().__init__(mail_state)
        self.timeout = timeout

    def configure_host(self) -> smtplib.SMTP:
        smtp_class = smtplib.SMTP_SSL if self.mail.use_ssl else smtplib.SMTP
        host = smtp_class(self.mail.server, self.mail.port, timeout=self.timeout)
        if self.mail.use_tls:
            host.starttls()
        if self.mail.username and self.mail.password:
            host.login(self.mail.username, self.mail.password)
        return host


def send_mail(subject: str, recipients: list[str], text: str, html: str) -> None:
    """Send one email with Flask-Mail; an SMTP failure raises, and RQ retries the job on its schedule."""
    message = Message(one_line(subject), recipients=recipients, body=text, html=html,
                      sender=current_app.config["MAIL_DEFAULT_SENDER"])
    config = current_app.config
    try:
        with TimedSMTPConnection(current_app.extensions["mail"], config["MAIL_TIMEOUT"]) as connection:
            message.send(connection)
    except (OSError, smtplib.SMTPException) as exc:
        raise TransientFailure(f"the SMTP server {config['MAIL_SERVER']}:{config['MAIL_PORT']} did not take "
                               f"{subject!r}: {exc.__class__.__name__}: {exc}") from exc
    logger.info("mail.sent subject=%r recipients=%s", subject, len(recipients))


def post_process_event(event_pk: int, is_new_group: bool, is_regression: bool) -> None:
    """After an event is stored: resource webhooks, issue alert rules, metric alert rules.

    1. ``issue.created`` for a new issue, ``issue.unresolved`` for a reopened one, ``error.created`` always.
    2. Each issue alert rule the event sets off: one ``send_alert_event`` job per action.
    3. The event's environment is noted on its issue (the issues list filters by it).
    4. One commit queues all of them (the outbox). A re-run of this job after a crash derives the same
       webhook-ids, so a receiver never sees one message under two ids.
    5. The project's metric alert rules are evaluated now, not only on the next tick.
    """
    event = db.session.get(Event, event_pk)
    if event is None:
        return
    base_url = current_app.config["BASE_URL"]
    organization_id = event.group.project.organization_id
    if is_new_group:
        notify_resource_change(organization_id, "issue.created", {"issue": serialize_issue(event.group, base_url, event)})
    if is_regression:
        notify_resource_change(organization_id, "issue.unresolved", {"issue": serialize_issue(event.group, base_url, event)})
    notify_resource_change(organization_id, "error.created", {"error": serialize_event(event, base_url)})
    stored = StoredEvent(event.id, event.group_id, is_new_group, is_regression)
    actions = [(rule, action) for rule in rules_to_fire(stored) for action in rule.actions]
    caps = app_caps(action["sentry_app_id"] for _, action in actions)
    for rule, action in actions:
        app_id = action["sentry_app_id"]
        message_id = new_message_id("rule", rule.id, app_id)
        enqueue_after_commit(task_spec(
            "webapp.dispatch.tasks.send_alert_event",
            (event.id, rule.id, app_id, action.get("settings") or [], message_id),
            app_cap=(app_id, caps[app_id]), message_id=message_id))
    record_group_environment(event)
    db.session.commit()
    for rule in db.session.scalars(select(MetricAlertRule).where(MetricAlertRule.project_id == event.project_id)):
        notify_incident_changes(rule)


def incident_notifier(rule: MetricAlertRule, status_method: int = STATUS_METHOD_RULE_TRIGGERED) -> OnChange:
    """Return what queues ``metric_alert.<status>`` for each action of the rule in the open transaction (the outbox).

    ``status_method`` says how the change came (Sentry's IncidentStatusMethod): the rule, or a person.
    """

    def notify(incident_id: int, status: str, value: int) -> list[dict]:
        caps = app_caps(action["sentry_app_id"] for action in rule.actions)
        queued = []
        for action in rule.actions:
            app_id = action["sentry_app_id"]
            message_id = new_message_id("incident", incident_id, status, app_id)
            enqueue_after_commit(task_spec(
                "webapp.dispatch.tasks.send_incident_alert_notification",
                (app_id, incident_id, status, value, message_id, status_method), app_cap=(app_id, caps[app_id]),
                message_id=message_id))
            queued.append({"sentry_app_id": app_id, "webhook_id": message_id})
        return queued

    return notify


def notify_incident_changes(rule: MetricAlertRule, now=None, unless_since=None) -> None:
    """Evaluate one metric alert rule; each status change commits with a notification per action."""
    evaluate_rule(rule, now, on_change=incident_notifier(rule), unless_since=unless_since)


def resolve_incident_and_notify(incident_id: int, actor: User) -> bool:
    """Resolve an open incident for a person with its ``resolved`` notifications; False if it was closed already."""
    incident = db.session.get(Incident, incident_id)
    return resolve_incident(incident_id, actor, on_change=incident_notifier(incident.alert_rule, STATUS_METHOD_MANUAL))


def evaluate_metric_alerts() -> int:
    """Evaluate every metric alert rule for each minute it is owed, oldest first (the minute tick); return how many
    rules were looked at.

    A minute is owed from its start until the rule is evaluated (incidents.tick_moments), so the minutes a
    database outage missed are evaluated by the first tick after it; each evaluation commits on its own, so a
    tick retried after an outage cut it short evaluates only what it had not.
    """
    now = utcnow()
    rules = list(db.session.scalars(select(MetricAlertRule)))
    for rule in rules:
        for moment, minute in tick_moments(rule.evaluated_at, now):
            notify_incident_changes(rule, moment, unless_since=minute)
    return len(rules)
