"""Metric alert incidents: the list, one incident (its metric, status history, notifications), resolving by hand."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from ..alerts.incidents import IncidentBusy, metric_series
from ..apps.projects import list_projects
from ..core.charts import metric_svg
from ..core.extensions import db
from ..dispatch.tasks import resolve_incident_and_notify
from ..models import MANAGING_ROLES, Incident, IncidentStatusChange, SentryApp
from .helpers import get_org_or_404, require_manager

bp = Blueprint("incidents", __name__, url_prefix="/orgs/<org_slug>/incidents")


@bp.route("")
@login_required
def list_view(org_slug):
    organization, _ = get_org_or_404(org_slug)
    incidents = list(db.session.scalars(select(Incident).where(Incident.organization_id == organization.id)
                                        .order_by(Incident.identifier.desc()).limit(200)))
    return render_template("incidents/list.html", organization=organization, incidents=incidents,
                           projects=list_projects(organization.id) if not incidents else [])


def _incident_or_404(organization, identifier: int) -> Incident:
    incident = db.session.scalar(select(Incident).where(Incident.organization_id == organization.id,
                                                        Incident.identifier == identifier))
    if incident is None:
        abort(404)
    return incident


@bp.route("/<int:identifier>")
@login_required
def detail(org_slug, identifier):
    organization, role = get_org_or_404(org_slug)
    incident = _incident_or_404(organization, identifier)
    rule = incident.alert_rule
    changes = list(db.session.scalars(select(IncidentStatusChange).where(IncidentStatusChange.incident_id == incident.id)
                                      .order_by(IncidentStatusChange.date, IncidentStatusChange.id)))
    apps = {app.id: app for app in db.session.scalars(select(SentryApp).where(
        SentryApp.organization_id == organization.id))}
    thresholds = [(name, value) for name, value in (("critical", rule.critical_threshold),
                                                    ("warning", rule.warning_threshold),
                                                    ("resolve", rule.resolve_threshold)) if value is not None]
    chart = metric_svg(metric_series(incident), thresholds,
                       [(change.date, change.status, change.metric_value) for change in changes], 640, 180,
                       f"Events in {rule.time_window_minutes}-minute windows")
    return render_template("incidents/detail.html", organization=organization, incident=incident, rule=rule,
                           changes=changes, apps=apps, chart=chart, thresholds=thresholds,
                           can_resolve=role in MANAGING_ROLES and incident.status != "closed")


@bp.route("/<int:identifier>/resolve", methods=["POST"])
@login_required
def resolve(org_slug, identifier):
    organization, role = get_org_or_404(org_slug)
    incident = _incident_or_404(organization, identifier)
    require_manager(role)
    try:
        resolved = resolve_incident_and_notify(incident.id, current_user)
    except IncidentBusy:
        flash("The rule is being evaluated right now; try again in a moment.", "error")
    else:
        flash("Resolved." if resolved else "This incident was already resolved.", "success" if resolved else "error")
    return redirect(url_for("incidents.detail", org_slug=org_slug, identifier=identifier), 303)
