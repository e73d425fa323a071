"""Metric alert incidents: the list and one incident."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_login import login_required
from sqlalchemy import select

from ..extensions import db
from ..models import Incident
from .helpers import get_org_or_404

bp = Blueprint("incidents", __name__, url_prefix="/orgs/<org_slug>/incidents")


@bp.route("")
@login_required
def list_view(org_slug):
    organization, _ = get_org_or_404(org_slug)
    incidents = db.session.scalars(select(Incident).where(Incident.organization_id == organization.id)
                                   .order_by(Incident.identifier.desc()).limit(200))
    return render_template("incidents/list.html", organization=organization, incidents=list(incidents))


@bp.route("/<int:identifier>")
@login_required
def detail(org_slug, identifier):
    organization, _ = get_org_or_404(org_slug)
    incident = db.session.scalar(select(Incident).where(Incident.organization_id == organization.id,
                                                        Incident.identifier == identifier))
    if incident is None:
        abort(404)
    return render_template("incidents/detail.html", organization=organization, incident=incident)
