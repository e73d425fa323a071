"""Projects and rules in the dashboard."""

import re

import pytest

from webapp.extensions import db
from webapp.models import IssueAlertRule, MetricAlertRule, Project


def test_create_project_shows_its_dsn(app, owner):
    response = owner.post("/orgs/acme/projects", {"name": "Mobile app"})
    assert response.status_code == 302 and response.headers["Location"] == "/orgs/acme/projects/mobile-app"
    page = owner.get("/orgs/acme/projects/mobile-app").get_data(as_text=True)
    with app.app_context():
        project = db.session.query(Project).one()
        assert f"http://{project.public_key}@hookline.test/{project.id}" in page
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
