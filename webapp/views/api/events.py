"""Events through the API, at Sentry's paths: a project's and an issue's events, and one event in Sentry's shape."""

from __future__ import annotations

from flask import jsonify
from sqlalchemy import select

from ...core.extensions import db
from ...models import Event
from . import ApiError, bp, flag, org_for, page_limit, paged_query, project_for
from .issues import group_for
from .shapes import event_detail, event_summary

# The events Sentry names instead of an id under an issue; Hookline recommends the latest.
NAMED_EVENTS = {"latest": Event.id.desc(), "recommended": Event.id.desc(), "oldest": Event.id.asc()}


def _event_page(statement):
    """A page of events, newest first: summaries, or whole events with ``full=true``."""
    full = flag("full")
    return paged_query(statement.order_by(Event.id.desc()),
                       lambda events: [{**event_detail(event), "event.type": event.data.get("type", "error"),
                                        "crashFile": None} if full else event_summary(event) for event in events],
                       page_limit("per_page"))


@bp.route("/organizations/<org_slug>/issues/<issue_id>/events/")
def issue_events(org_slug, issue_id):
    """The issue's events, newest first, as Sentry's event list shows them (``full=true``: whole events)."""
    organization, _ = org_for(org_slug)
    return _event_page(select(Event).where(Event.group_id == group_for(organization, issue_id).id))


@bp.route("/projects/<org_slug>/<project_slug>/events/")
def project_events(org_slug, project_slug):
    organization, _ = org_for(org_slug)
    return _event_page(select(Event).where(Event.project_id == project_for(organization, project_slug).id))


@bp.route("/organizations/<org_slug>/issues/<issue_id>/events/<event_id>/")
def issue_event(org_slug, issue_id, event_id):
    """One event of the issue: ``latest``, ``oldest``, ``recommended`` (the latest) or its id."""
    organization, _ = org_for(org_slug)
    of_issue = select(Event).where(Event.group_id == group_for(organization, issue_id).id)
    if event_id in NAMED_EVENTS:
        row = db.session.scalar(of_issue.order_by(NAMED_EVENTS[event_id]).limit(1))
    else:
        row = db.session.scalar(of_issue.where(Event.event_id == event_id.replace("-", "").lower()))
    return _event_or_404(row)


@bp.route("/projects/<org_slug>/<project_slug>/events/<event_id>/")
def event(org_slug, project_slug, event_id):
    organization, _ = org_for(org_slug)
    project = project_for(organization, project_slug)
    row = db.session.scalar(select(Event).where(Event.project_id == project.id,
                                                Event.event_id == event_id.replace("-", "").lower()))
    return _event_or_404(row)


def _event_or_404(row: Event | None):
    if row is None:
        raise ApiError(404, "The requested resource does not exist.")
    return jsonify(event_detail(row))
