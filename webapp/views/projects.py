"""Projects (client keys, quota, ingestion counts), their issue alert rules and metric alert rules."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from ..alerts.alert_rules import RuleValidationError, format_settings, parse_actions, save_issue_rule, save_metric_rule
from ..alerts.alert_rules import delete_rule as delete_alert_rule
from ..alerts.ingest_outcomes import last_day_outcomes
from ..apps.internal_apps import list_organization_apps
from ..apps.project_keys import effective_rate_limit
from ..apps.projects import ProjectError, create_project, list_projects, set_key_rate_limit
from ..core.extensions import db
from ..core.forms import EmptyForm
from ..models import LEVELS, MANAGING_ROLES, RULE_TRIGGERS, IssueAlertRule, MetricAlertRule
from .helpers import confirm_step, confirmed, get_in_project_or_404, get_org_or_404, get_project_or_404, require_manager

bp = Blueprint("projects", __name__, url_prefix="/orgs/<org_slug>/projects")

RULE_KINDS = {
    "rules": (IssueAlertRule, save_issue_rule, "projects/issue_rule_form.html"),
    "metric-rules": (MetricAlertRule, save_metric_rule, "projects/metric_rule_form.html"),
}


@bp.route("", methods=["GET", "POST"])
@login_required
def list_view(org_slug):
    organization, role = get_org_or_404(org_slug)
    error = None
    if request.method == "POST":
        require_manager(role)
        if EmptyForm().validate_on_submit():
            try:
                project = create_project(organization, request.form.get("name", ""), actor_id=current_user.id)
            except ProjectError as exc:
                error = str(exc)
            else:
                flash(f"Created project {project.name}.", "success")
                return redirect(url_for("projects.detail", org_slug=org_slug, project_slug=project.slug))
    projects = list_projects(organization.id)
    return render_template("projects/list.html", organization=organization, role=role, projects=projects,
                           error=error, form=EmptyForm()), 400 if error else 200


@bp.route("/<project_slug>")
@login_required
def detail(org_slug, project_slug):
    organization, role = get_org_or_404(org_slug)
    return render_detail(organization, role, get_project_or_404(organization, project_slug))


@bp.route("/<project_slug>/settings", methods=["POST"])
@login_required
def update_settings(org_slug, project_slug):
    """Set the project's events per minute per key (blank: INGEST_RATE_LIMIT)."""
    organization, role = get_org_or_404(org_slug)
    project = get_project_or_404(organization, project_slug)
    require_manager(role)
    if EmptyForm().validate_on_submit():
        try:
            limit = set_key_rate_limit(project, request.form.get("key_rate_limit", ""), current_user.id)
        except ProjectError as exc:
            return render_detail(organization, role, project, errors={"key_rate_limit": str(exc)})
        default = current_app.config["INGEST_RATE_LIMIT"]
        flash(f"Each key of {project.name} may now send {limit or default} events a minute"
              f"{'' if limit else ' (the default)'}, unless the key has a limit of its own.", "success")
    return redirect(url_for("projects.detail", org_slug=org_slug, project_slug=project_slug))


def render_detail(organization, role, project, errors: dict[str, str] | None = None):
    """Render the project page (answering 400 when ``errors`` says what was wrong with a form on it)."""
    default_limit = current_app.config["INGEST_RATE_LIMIT"]
    base_url = current_app.config["BASE_URL"]
    outcomes = last_day_outcomes(project.id)
    issue_rules = db.session.scalars(select(IssueAlertRule).where(IssueAlertRule.project_id == project.id))
    metric_rules = db.session.scalars(select(MetricAlertRule).where(MetricAlertRule.project_id == project.id))
    apps = {sentry_app.id: sentry_app for sentry_app in list_organization_apps(organization.id)}
    return render_template(
        "projects/detail.html", organization=organization, project=project, can_manage=role in MANAGING_ROLES,
        dsn=project.dsn(base_url), client_keys=[
            (key, key.dsn(base_url), effective_rate_limit(key, project, default_limit)) for key in project.client_keys],
        default_limit=default_limit, outcomes=outcomes[0] if outcomes else None,
        key_outcomes=outcomes[1] if outcomes else {}, errors=errors or {}, issue_rules=list(issue_rules),
        metric_rules=list(metric_rules), apps=apps, triggers=RULE_TRIGGERS, form=EmptyForm(),
    ), 400 if errors else 200


@bp.route("/<project_slug>/<any(rules, 'metric-rules'):kind>/new", methods=["GET", "POST"])
@bp.route("/<project_slug>/<any(rules, 'metric-rules'):kind>/<int:rule_id>", methods=["GET", "POST"])
@login_required
def edit_rule(org_slug, project_slug, kind, rule_id=None):
    organization, role = get_org_or_404(org_slug)
    project = get_project_or_404(organization, project_slug)
    require_manager(role)
    model, save, template = RULE_KINDS[kind]
    rule = get_in_project_or_404(model, project, rule_id) if rule_id else None
    errors: dict[str, str] = {}
    if request.method == "POST" and EmptyForm().validate_on_submit():
        try:
            actions, action_errors = parse_actions(request.form, organization.id)
            saved = save(project, request.form, actions, rule, errors=action_errors, actor_id=current_user.id)
        except RuleValidationError as exc:
            errors = exc.errors
            db.session.rollback()
        else:
            flash(f"Saved rule {saved.name}.", "success")
            return redirect(url_for("projects.detail", org_slug=org_slug, project_slug=project_slug))
    values = request.form if request.method == "POST" else _rule_values(rule)
    return render_template(
        template, organization=organization, project=project, rule=rule, values=values, errors=errors,
        apps=list_organization_apps(organization.id), triggers=RULE_TRIGGERS, levels=LEVELS, form=EmptyForm(),
    ), 400 if errors else 200


@bp.route("/<project_slug>/<any(rules, 'metric-rules'):kind>/<int:rule_id>/delete", methods=["POST"])
@login_required
def delete_rule(org_slug, project_slug, kind, rule_id):
    organization, role = get_org_or_404(org_slug)
    project = get_project_or_404(organization, project_slug)
    require_manager(role)
    rule = get_in_project_or_404(RULE_KINDS[kind][0], project, rule_id)
    if not confirmed():
        consequence = "It sends no more alerts." + (" Its incidents are deleted with it." if kind == "metric-rules" else "")
        return confirm_step(f"Delete the rule {rule.name}?", consequence,
                            "Delete rule", url_for("projects.detail", org_slug=org_slug, project_slug=project_slug),
                            organization)
    if EmptyForm().validate_on_submit():
        delete_alert_rule(project, rule, current_user.id)
        flash(f"Deleted rule {rule.name}.", "info")
    return redirect(url_for("projects.detail", org_slug=org_slug, project_slug=project_slug))


def _rule_values(rule) -> dict:
    """Return the form values of an existing rule (or the defaults of a new one)."""
    if rule is None:
        return {"trigger": "first_seen", "frequency_minutes": "30", "time_window_minutes": "10"}
    values = {column: "" if getattr(rule, column) is None else str(getattr(rule, column))
              for column in ("name", "trigger", "min_level", "frequency_minutes", "time_window_minutes",
                             "warning_threshold", "critical_threshold", "resolve_threshold") if hasattr(rule, column)}
    for action in rule.actions:
        values[f"app_{action['sentry_app_id']}"] = "on"
        values[f"settings_{action['sentry_app_id']}"] = format_settings(action.get("settings") or [])
    return values
