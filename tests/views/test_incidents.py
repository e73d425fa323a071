"""The incident pages: the metric against its thresholds, the status history, the notifications, resolving by hand."""

import json
import re
from datetime import timedelta

import pytest
from rq import Queue
from sqlalchemy import event

from tests.test_incidents import evaluate, send_events, statuses
from webapp.alerts.alert_rules import save_metric_rule
from webapp.core import keys
from webapp.core.extensions import db
from webapp.models import Incident, IncidentStatusChange, OutboxJob, Project, utcnow


@pytest.fixture
def rule_id(world):
    """A rule on project Web: warning at 2, critical at 4, resolve under 1; it notifies both apps."""
    with world.app.app_context():
        project = db.session.get(Project, world.project_id)
        fields = {"name": "Error spike", "time_window_minutes": "10", "warning_threshold": "2",
                  "critical_threshold": "4", "resolve_threshold": "1"}
        actions = [{"sentry_app_id": world.bare_id, "settings": []}, {"sentry_app_id": world.subscribed_id}]
        return save_metric_rule(project, fields, actions).id


@pytest.fixture
def critical(world, sdk, rule_id, run_worker, receiver):
    """Incident #1, opened at warning (2 events) and then critical (4 events); its webhooks delivered."""
    send_events(sdk, 2, "a")
    run_worker()
    send_events(sdk, 2, "b")
    run_worker()
    assert statuses(receiver) == ["warning", "warning", "critical", "critical"]  # one per app


def history(page: str) -> list[tuple[str, str, str]]:
    """Return the status history's rows as (status, value, by)."""
    table = re.search(r'<table class="table" data-testid="incident-history">(.*?)</table>', page, re.S).group(1)
    rows = re.findall(r'<span class="badge status-(\w+)">\w+</span></td>\s*<td>(\d+)</td>\s*<td>([^<]+)</td>', table)
    return rows


def webhook_id(sent) -> str:
    return {name.lower(): value for name, value in sent.headers.items()}["webhook-id"]


def queued_notifications(app) -> list[tuple]:
    """Return the arguments of the queued metric_alert jobs: (app id, incident id, status, value, webhook-id)."""
    jobs = [job for name in keys.ALL_QUEUES for job in Queue(name, connection=app.extensions["redis"]).get_jobs()]
    return [tuple(job.args) for job in jobs if job.func_name.endswith("send_incident_alert_notification")]


def test_the_incident_page_draws_the_metric_against_the_thresholds_with_its_history(owner, critical, receiver):
    page = owner.get("/orgs/acme/incidents/1").get_data(as_text=True)
    svg = re.search(r'<svg class="metric-chart" role="img".*?</svg>', page, re.S).group(0)
    for name, value in [("critical", 4), ("warning", 2), ("resolve", 1)]:
        assert f'<g class="threshold threshold-{name}"><title>{name} threshold: {value}</title>' in svg
    assert '<polyline class="metric-line" points="' in svg
    assert "warning at 2" in svg and "critical at 4" in svg  # the status changes, as markers
    aria = re.search(r'aria-label="([^"]*)"', svg).group(1)
    assert "highest 4" in aria and "critical threshold 4" in aria
    assert history(page) == [("warning", "2", "the rule"), ("critical", "4", "the rule")]


def test_each_notification_is_listed_with_its_webhook_id_and_a_link_to_the_request_log(owner, critical, receiver):
    page = owner.get("/orgs/acme/incidents/1").get_data(as_text=True)
    for sent in receiver.of("metric_alert.critical"):
        app_slug, app_name = ("alerts-only", "Alerts only") if sent.path == "/alerts" else ("everything", "Everything")
        link = f'<a href="/orgs/acme/apps/{app_slug}?event_type=metric_alert.critical">{app_name}</a>'
        assert link in page
        assert f"webhook-id <code>{webhook_id(sent)}</code>" in page
    log = owner.get("/orgs/acme/apps/alerts-only?event_type=metric_alert.critical")
    assert log.status_code == 200 and "metric_alert.critical" in log.get_data(as_text=True)


def test_a_manager_resolves_by_hand_and_one_resolved_notification_per_action_goes_through_the_outbox(
        app, owner, critical, receiver, run_worker, make_user):
    make_user("manager@example.com", "acme", "manager")
    manager = type(owner)(app.test_client())
    manager.login("manager@example.com")
    page = manager.get("/orgs/acme/incidents/1").get_data(as_text=True)
    assert '<button type="submit">Resolve</button>' in page

    written = []  # what the resolve writes into outbox_job, observed as the rows are inserted

    def observe(mapper, connection, row):
        written.append(json.loads(row.spec_json))

    event.listen(OutboxJob, "after_insert", observe)
    try:
        response = manager.post("/orgs/acme/incidents/1/resolve")
    finally:
        event.remove(OutboxJob, "after_insert", observe)
    assert response.status_code == 303
    assert [(spec["func"], spec["args"][2]) for spec in written] == [
        ("webapp.dispatch.tasks.send_incident_alert_notification", "resolved")] * 2
    jobs = queued_notifications(app)
    assert sorted(job[4] for job in jobs) == sorted(spec["args"][4] for spec in written)
    assert sorted((job[0], job[2]) for job in jobs) == sorted([(1, "resolved"), (2, "resolved")])  # per action
    with app.app_context():
        # Committed with the change, then queued; each message's row is kept until it is delivered or given up.
        assert db.session.query(OutboxJob).filter(OutboxJob.queued_at.is_(None)).count() == 0
        assert {job[4] for job in jobs} <= {row.message_id for row in db.session.query(OutboxJob)}
        [change] = db.session.query(IncidentStatusChange).filter_by(status="resolved").all()
        assert sorted(n["webhook_id"] for n in change.notifications) == sorted(job[4] for job in jobs)

    page = manager.get("/orgs/acme/incidents/1").get_data(as_text=True)
    assert '<p class="flash flash-success" role="status">Resolved.</p>' in page
    assert 'data-testid="incident-status">closed<' in page and "still open" not in page
    assert history(page)[-1] == ("resolved", "4", "manager")
    assert '<button type="submit">Resolve</button>' not in page

    again = manager.post("/orgs/acme/incidents/1/resolve", follow_redirects=True)
    assert "This incident was already resolved." in again.get_data(as_text=True)
    audit = owner.get("/orgs/acme/audit-log?event=incident.resolve").get_data(as_text=True)
    audit = audit[audit.index("<tbody>"):]  # one entry: the second press changed nothing
    assert audit.count('class="audit-row"') == 1 and "Incident resolved by hand" in audit
    assert "manager@example.com" in audit and "#1 Error spike" in audit and "metric value: 4" in audit
    run_worker()
    resolved = receiver.of("metric_alert.resolved")
    assert sorted(sent.path for sent in resolved) == ["/alerts", "/all"]
    assert {webhook_id(sent) for sent in resolved} == {job[4] for job in jobs}
    assert all(sent.json["data"]["metric_alert"]["date_closed"] for sent in resolved)
    # As Sentry sends a resolve by hand: status 2 (closed), status_method 1 (manual)
    assert {(sent.json["data"]["metric_alert"]["status"], sent.json["data"]["metric_alert"]["status_method"])
            for sent in resolved} == {(2, 1)}


def test_after_a_manual_resolve_the_next_evaluation_opens_a_new_incident_if_still_over(app, owner, critical, rule_id,
                                                                                        receiver, run_worker):
    owner.post("/orgs/acme/incidents/1/resolve")
    evaluate(app, rule_id)  # still 4 events in the window
    run_worker()
    with app.app_context():
        assert [(i.identifier, i.status) for i in db.session.query(Incident).order_by(Incident.id)] == [
            (1, "closed"), (2, "critical")]
    evaluate(app, rule_id, minutes_from_now=11)  # the window has moved past every event
    run_worker()
    assert statuses(receiver)[4:] == ["resolved"] * 2 + ["critical"] * 2 + ["resolved"] * 2
    page = owner.get("/orgs/acme/incidents/2").get_data(as_text=True)
    assert history(page) == [("critical", "4", "the rule"), ("resolved", "0", "the rule")]


def test_members_see_no_resolve_button_and_cannot_resolve(app, owner, critical, make_user):
    make_user("member@example.com", "acme", "member")
    member = type(owner)(app.test_client())
    member.login("member@example.com")
    page = member.get("/orgs/acme/incidents/1").get_data(as_text=True)
    assert "metric-chart" in page and '<button type="submit">Resolve</button>' not in page
    assert member.post("/orgs/acme/incidents/1/resolve").status_code == 403
    with app.app_context():
        assert db.session.query(Incident).one().status == "critical"
    assert queued_notifications(app) == []


def test_another_orgs_incident_is_404(app, owner, critical, make_user):
    make_user("eve@example.com", "evil", "owner")
    eve = type(owner)(app.test_client())
    eve.login("eve@example.com")
    assert eve.get("/orgs/acme/incidents/1").status_code == 404
    assert eve.post("/orgs/evil/incidents/1/resolve").status_code == 404
    assert eve.post("/orgs/acme/incidents/1/resolve").status_code == 404


def test_the_empty_list_says_where_metric_alert_rules_are_made(owner, world):
    page = owner.get("/orgs/acme/incidents").get_data(as_text=True)
    empty = re.search(r'<div class="empty" data-testid="incidents-empty">(.*?)</div>', page, re.S).group(1)
    assert "Metric alert rules are made on a project's page" in empty
    assert 'href="/orgs/acme/projects"' in empty and '<a href="/orgs/acme/projects/web">Web</a>' in empty


def test_the_chart_covers_a_window_before_the_incident_until_it_closed(app, world, sdk, rule_id, run_worker):
    from webapp.alerts.incidents import metric_series

    send_events(sdk, 5)
    run_worker()
    evaluate(app, rule_id, minutes_from_now=11)
    with app.app_context():
        incident = db.session.query(Incident).one()
        series = metric_series(incident)
        assert series[0][0] <= incident.date_started - timedelta(minutes=9)
        assert series[-1][0] >= incident.date_closed
        assert max(value for _, value in series) == 5 and series[-1][1] == 0
        assert series[0][0] < utcnow()
