"""Projects and rules in the dashboard."""

import json
import re

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import select

from tests.alert_world import wait_unless_a_minute_has_time_left
from webapp.apps.projects import create_project
from webapp.core.embedded_redis import free_port
from webapp.core.extensions import db
from webapp.models import AuditLogEntry, IssueAlertRule, MetricAlertRule, Organization, Project, ProjectKey


def test_create_project_shows_its_dsn(app, owner):
    response = owner.post("/orgs/acme/projects", {"name": "Mobile app"})
    assert response.status_code == 302 and response.headers["Location"] == "/orgs/acme/projects/mobile-app"
    page = owner.get("/orgs/acme/projects/mobile-app").get_data(as_text=True)
    with app.app_context():
        project = db.session.query(Project).one()
        [key] = project.client_keys
        assert key.label == "Default" and f"http://{key.public_key}@hookline.test/{project.id}" in page
    assert owner.post("/orgs/acme/projects", {"name": "Mobile app"}).status_code == 400
    assert owner.post("/orgs/acme/projects", {"name": ""}).status_code == 400


def test_issue_rule_form_round_trip(app, world, owner):
    form = {"name": "Ops pager", "trigger": "every_event", "min_level": "error", "frequency_minutes": "15",
            f"app_{world.bare_id}": "on", f"settings_{world.bare_id}": "channel=#ops\nseverity = high"}
    response = owner.post("/orgs/acme/projects/web/rules/new", form)
    assert response.status_code == 302
    with app.app_context():
        rule = db.session.query(IssueAlertRule).one()
        assert (rule.trigger, rule.min_level, rule.frequency_minutes) == ("every_event", "error", 15)
        assert rule.actions == [{"sentry_app_id": world.bare_id, "settings": [
            {"name": "channel", "value": "#ops"}, {"name": "severity", "value": "high"}]}]
    detail = owner.get("/orgs/acme/projects/web").get_data(as_text=True)
    assert "Ops pager" in detail and "Alerts only" in detail
    edit = owner.get(f"/orgs/acme/projects/web/rules/{rule.id}").get_data(as_text=True)
    assert "channel=#ops" in edit and 'value="Ops pager"' in edit
    owner.post(f"/orgs/acme/projects/web/rules/{rule.id}", {**form, "frequency_minutes": "60"})
    asked = owner.post(f"/orgs/acme/projects/web/rules/{rule.id}/delete").get_data(as_text=True)
    assert "Delete the rule Ops pager?" in asked and 'name="confirm" value="1"' in asked
    with app.app_context():
        assert db.session.query(IssueAlertRule).count() == 1
    owner.post(f"/orgs/acme/projects/web/rules/{rule.id}/delete", {"confirm": "1"})
    with app.app_context():
        assert db.session.query(IssueAlertRule).count() == 0


def test_bad_rule_input_shows_errors_and_saves_nothing(app, world, owner):
    cases = [
        ({"name": "x", "trigger": "first_seen", "frequency_minutes": "15"}, "Choose at least one app"),
        ({"name": "x", "trigger": "first_seen", "frequency_minutes": "soon", f"app_{world.bare_id}": "on"}, "Enter a whole number."),
        ({"name": "x", "trigger": "sometimes", "frequency_minutes": "5", f"app_{world.bare_id}": "on"}, "Choose when the rule fires."),
        ({"name": "x", "trigger": "first_seen", "frequency_minutes": "5", f"app_{world.bare_id}": "on",
          f"settings_{world.bare_id}": "no equals sign"}, "line 1 must look like name=value"),
    ]
    for form, message in cases:
        response = owner.post("/orgs/acme/projects/web/rules/new", form)
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)
    response = owner.post("/orgs/acme/projects/web/metric-rules/new", {
        "name": "Spike", "time_window_minutes": "5", "critical_threshold": "3", "warning_threshold": "7",
        f"app_{world.bare_id}": "on"})
    assert "must be below the critical threshold" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(IssueAlertRule).count() == 0 and db.session.query(MetricAlertRule).count() == 0


def test_members_cannot_manage_rules_and_other_orgs_get_404(app, world, owner, make_user):
    make_user("member@example.com", "acme", "member")
    member = type(owner)(app.test_client())
    member.login("member@example.com")
    assert member.get("/orgs/acme/projects/web").status_code == 200
    assert member.get("/orgs/acme/projects/web/rules/new").status_code == 403
    assert member.post("/orgs/acme/projects", {"name": "Sneaky"}).status_code == 403
    make_user("eve@example.com", "evil", "owner")
    eve = type(owner)(app.test_client())
    eve.login("eve@example.com")
    assert eve.get("/orgs/acme/projects/web").status_code == 404
    assert eve.get("/orgs/evil/projects/web").status_code == 404
    page = owner.get("/orgs/acme/projects/web").get_data(as_text=True)
    assert re.search(r"New issue alert rule", page)


# ---------------------------------------------------------------- client keys and quota on the project page


def project_keys(app) -> list[tuple[str, str, bool]]:
    """The keys of project web as (label, public key, active), oldest first."""
    with app.app_context():
        project = db.session.scalar(select(Project).where(Project.slug == "web"))
        return [(key.label, key.public_key, key.is_active) for key in project.client_keys]


def ingest(app, key: str, n: int = 0, body: bytes | None = None):
    project_id = project_keys_project_id(app)
    data = body if body is not None else json.dumps({"event_id": f"{n:032x}", "message": "boom"}).encode()
    return app.test_client().post(f"/api/{project_id}/store/", data=data,
                                  headers={"X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={key}"})


def project_keys_project_id(app) -> int:
    with app.app_context():
        return db.session.scalar(select(Project.id).where(Project.slug == "web"))


def test_keys_are_created_disabled_enabled_and_deleted_on_the_page(app, world, owner):
    [(_, default, _)] = project_keys(app)
    response = owner.post("/orgs/acme/projects/web/keys", {"label": "  Mobile app  "})
    assert response.status_code == 302 and response.headers["Location"].endswith("/orgs/acme/projects/web#client-keys")
    [_, (label, mobile, active)] = project_keys(app)
    assert (label, active) == ("Mobile app", True)
    page = owner.get("/orgs/acme/projects/web").get_data(as_text=True)
    assert "Created key Mobile app" in page and f"http://{mobile}@hookline.test/{world.project_id}" in page
    assert ingest(app, mobile, 1).status_code == 200

    assert owner.post(f"/orgs/acme/projects/web/keys/{mobile}/disable").status_code == 302
    assert project_keys(app)[1][2] is False
    page = owner.get("/orgs/acme/projects/web").get_data(as_text=True)
    assert "Key Mobile app is disabled" in page and "badge-disabled" in page
    assert ingest(app, mobile, 2).status_code == 403
    owner.post(f"/orgs/acme/projects/web/keys/{mobile}/enable")
    assert project_keys(app)[1][2] is True and ingest(app, mobile, 3).status_code == 200

    confirm = owner.get(f"/orgs/acme/projects/web/keys/{mobile}/delete")
    assert confirm.status_code == 200 and "Delete key Mobile app?" in confirm.get_data(as_text=True)
    assert len(project_keys(app)) == 2  # asking changes nothing
    assert owner.post(f"/orgs/acme/projects/web/keys/{mobile}/delete").status_code == 302
    assert [key for _, key, _ in project_keys(app)] == [default]
    assert ingest(app, mobile, 4).status_code == 403
    with app.app_context():
        events = [entry.event for entry in db.session.scalars(select(AuditLogEntry).order_by(AuditLogEntry.id))]
    assert {"project-key.create", "project-key.disable", "project-key.enable", "project-key.remove"} <= set(events)


def test_deleting_or_disabling_the_last_active_key_warns(app, world, owner):
    [(_, default, _)] = project_keys(app)
    confirm = owner.get(f"/orgs/acme/projects/web/keys/{default}/delete").get_data(as_text=True)
    assert "only active key" in confirm
    owner.post(f"/orgs/acme/projects/web/keys/{default}/disable")
    page = owner.get("/orgs/acme/projects/web").get_data(as_text=True)
    assert "has no active key now" in page and "No key is active" in page
    owner.post(f"/orgs/acme/projects/web/keys/{default}/delete")
    page = owner.get("/orgs/acme/projects/web").get_data(as_text=True)
    assert "Deleted key Default" in page and "has no active key now" in page
    assert project_keys(app) == []


def test_bad_key_input_is_refused_and_changes_nothing(app, world, owner, make_user):
    before = project_keys(app)
    for label, message in [("", "Give the key a label of 1 to 64 characters."), ("   ", "Give the key a label"),
                           ("x" * 65, "Give the key a label of 1 to 64 characters.")]:
        response = owner.post("/orgs/acme/projects/web/keys", {"label": label})
        assert response.status_code == 400 and message in response.get_data(as_text=True)
    for action in ("disable", "enable", "delete"):
        response = owner.post(f"/orgs/acme/projects/web/keys/{'f' * 32}/{action}")
        assert response.status_code == 404 and "no client key with that id" in response.get_data(as_text=True)
    assert owner.post(f"/orgs/acme/projects/web/keys/{before[0][1]}/rotate").status_code == 404
    # Another organisation's key, through this organisation's project, and the other way round: 404.
    make_user("eve@example.com", "evil", "owner")
    with app.app_context():
        evil = db.session.scalar(select(Organization).where(Organization.slug == "evil"))
        theirs = create_project(evil, "Web").client_keys[0].public_key
    assert owner.post(f"/orgs/acme/projects/web/keys/{theirs}/disable").status_code == 404
    assert owner.post(f"/orgs/evil/projects/web/keys/{theirs}/disable").status_code == 404
    eve = type(owner)(app.test_client())
    eve.login("eve@example.com")
    assert eve.post(f"/orgs/acme/projects/web/keys/{before[0][1]}/disable").status_code == 404
    assert eve.post("/orgs/acme/projects/web/keys", {"label": "Sneaky"}).status_code == 404
    assert project_keys(app) == before
    with app.app_context():
        assert db.session.scalar(select(ProjectKey).where(ProjectKey.public_key == theirs)).is_active


def test_members_see_the_keys_but_cannot_manage_them(app, world, owner, make_user):
    [(_, default, _)] = project_keys(app)
    make_user("member@example.com", "acme", "member")
    member = type(owner)(app.test_client())
    member.login("member@example.com")
    page = member.get("/orgs/acme/projects/web").get_data(as_text=True)
    assert f"http://{default}@hookline.test/" in page and "Create key" not in page and "Disable" not in page
    assert member.post("/orgs/acme/projects/web/keys", {"label": "Mine"}).status_code == 403
    assert member.post(f"/orgs/acme/projects/web/keys/{default}/disable").status_code == 403
    assert member.get(f"/orgs/acme/projects/web/keys/{default}/delete").status_code == 403
    assert member.post(f"/orgs/acme/projects/web/keys/{default}/delete").status_code == 403
    assert member.post("/orgs/acme/projects/web/settings", {"key_rate_limit": "5"}).status_code == 403
    assert project_keys(app) == [("Default", default, True)]


def test_the_quota_setting_takes_whole_numbers_or_blank(app, world, owner):
    def saved():
        with app.app_context():
            return db.session.scalar(select(Project.key_rate_limit).where(Project.slug == "web"))

    response = owner.post("/orgs/acme/projects/web/settings", {"key_rate_limit": "250"})
    assert response.status_code == 302 and saved() == 250
    assert "may now send 250 events a minute" in owner.get("/orgs/acme/projects/web").get_data(as_text=True)
    for bad in ("abc", "0", "-5", "1000001", "2.5", "²"):
        response = owner.post("/orgs/acme/projects/web/settings", {"key_rate_limit": bad})
        assert response.status_code == 400, bad
        assert "must be a whole number from 1 to 1000000" in response.get_data(as_text=True)
        assert saved() == 250
    owner.post("/orgs/acme/projects/web/settings", {"key_rate_limit": " "})
    assert saved() is None
    assert "may now send 1000 events a minute (the default)" in owner.get("/orgs/acme/projects/web").get_data(as_text=True)


def test_the_page_counts_what_ingestion_did_in_the_last_24_hours(app, world, owner):
    [(_, default, _)] = project_keys(app)
    app.config["INGEST_RATE_LIMIT"] = 1
    wait_unless_a_minute_has_time_left()
    assert ingest(app, default, body=b"{nope").status_code == 400  # before the quota is used: it is checked first
    assert ingest(app, default, 1).status_code == 200
    assert ingest(app, default, 2).status_code == 429
    owner.post("/orgs/acme/projects/web/keys", {"label": "Batch"})
    batch = project_keys(app)[1][1]
    two = b'{}\n{"type":"event"}\n{"event_id":"' + b"a" * 32 + b'"}\n{"type":"event"}\n{"event_id":"' + b"b" * 32 + b'"}\n'
    response = app.test_client().post(f"/api/{world.project_id}/envelope/?sentry_key={batch}", data=two)
    assert response.status_code == 200
    page = owner.get("/orgs/acme/projects/web").get_data(as_text=True)
    assert "Last 24 hours: 2 accepted · 1 rate-limited · 1 refused · 1 dropped</p>" in page
    assert "1 accepted · 1 rate-limited · 1 refused · 0 dropped" in page  # the Default key's row
    assert "1 accepted · 0 rate-limited · 0 refused · 1 dropped" in page  # the Batch key's row


def test_without_redis_the_page_says_the_counts_are_unavailable(app, world, owner):
    original = app.extensions["redis"]
    app.extensions["redis"] = redis.Redis(port=free_port(), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    try:
        response = owner.get("/orgs/acme/projects/web")
    finally:
        app.extensions["redis"].close()
        app.extensions["redis"] = original
    assert response.status_code == 200
    assert "Last 24 hours: counts unavailable (Redis did not answer)." in response.get_data(as_text=True)


def field_errors(response) -> list[str]:
    return re.findall(r'<p class="field-error" role="alert">([^<]+)</p>', response.get_data(as_text=True))


def test_rule_forms_report_every_error_at_once(app, world, owner):
    response = owner.post("/orgs/acme/projects/web/rules/new",
                          {"name": "", "trigger": "sometimes", "frequency_minutes": "soon"})
    assert response.status_code == 400
    assert field_errors(response) == ["Give the rule a name of at most 64 characters.", "Choose when the rule fires.",
                                      "Enter a whole number.", "Choose at least one app to send the alert to."]
    response = owner.post("/orgs/acme/projects/web/metric-rules/new", {
        "name": "Spike", "time_window_minutes": "0", "critical_threshold": "10", "warning_threshold": "20",
        "resolve_threshold": "15", f"app_{world.bare_id}": "on", f"settings_{world.bare_id}": "oops",
        f"app_{world.subscribed_id}": "on", f"settings_{world.subscribed_id}": "=x"})
    assert response.status_code == 400
    assert field_errors(response) == [
        "Enter a number from 1 to 1440.",
        "The warning threshold must be below the critical threshold (10).",
        "The resolve threshold must be at most 10, the lowest alert threshold.",
        "Settings for Everything: line 1 must look like name=value. Settings for Alerts only: line 1 must look like name=value.",
    ]
    with app.app_context():
        assert db.session.query(IssueAlertRule).count() == 0 and db.session.query(MetricAlertRule).count() == 0


@pytest.mark.parametrize("thresholds, field, message", [
    ({"critical_threshold": "10", "warning_threshold": "10"}, "warning_threshold", "must be below the critical threshold"),
    ({"critical_threshold": "10", "warning_threshold": "5", "resolve_threshold": "6"}, "resolve_threshold", "at most 5"),
    ({"critical_threshold": "10", "resolve_threshold": "11"}, "resolve_threshold", "at most 10"),
    ({"critical_threshold": "10", "resolve_threshold": "0"}, "resolve_threshold", "from 1 to"),  # no count is below 0
])
def test_metric_thresholds_on_the_wrong_side_are_refused(app, world, owner, thresholds, field, message):
    response = owner.post("/orgs/acme/projects/web/metric-rules/new", {
        "name": "Spike", "time_window_minutes": "5", f"app_{world.bare_id}": "on", **thresholds})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page and f'<input id="{field}"' in page.split("has-error")[1]


def test_metric_thresholds_in_order_are_saved(app, world, owner):
    response = owner.post("/orgs/acme/projects/web/metric-rules/new", {
        "name": "Spike", "time_window_minutes": "5", "critical_threshold": "10", "warning_threshold": "5",
        "resolve_threshold": "5", f"app_{world.bare_id}": "on"})
    assert response.status_code == 302
