"""What every page's template can use: times, charts, and which organisation and section the navigation shows."""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Flask, has_request_context, request, session
from flask_login import current_user
from markupsafe import Markup, escape

from .charts import health_chart, health_sparkline

# The navigation entry each page belongs to (endpoint first, then blueprint); it gets aria-current="page".
SECTIONS = {
    "apps.index": None,  # the organisation chooser belongs to no organisation
    "apps": "apps",
    "request_log": "apps",  # the app page's log: its inspector, resend and recovery pages
    "projects": "projects",
    "issues": "issues",
    "incidents": "incidents",
    "orgs.audit_log": "audit-log",
    "orgs.settings": "settings",
    "members": "members",
    "passwords.change": "password",
    "account.tokens": "tokens",
    "account.revoke": "tokens",
    "account.api_docs": "api-docs",
    "demo_outbox": "demo-outbox",
}
REMEMBERED_ORG = "org"  # session key: the organisation whose pages the person saw last


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(health_chart=health_chart, health_sparkline=health_sparkline,
                                 nav_organization=nav_organization)
    app.jinja_env.filters["timestamp"] = timestamp
    app.context_processor(lambda: {"nav_section": nav_section()})


def timestamp(value: datetime | str | None, empty: str = "—") -> Markup:
    """Return ``<time datetime="…Z">YYYY-MM-DD HH:MM UTC</time>``; static/time.js shows it in local time.

    ``value`` is a naive UTC datetime (as the models keep them), an aware one, or an ISO 8601 string.
    """
    if value is None or value == "":
        return Markup(escape(empty))
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    iso = value.isoformat(timespec="seconds") + "Z"
    return Markup(f'<time datetime="{iso}">{value:%Y-%m-%d %H:%M} UTC</time>')


def nav_section() -> str | None:
    if not has_request_context():  # an email rendered by the worker
        return None
    if request.endpoint in SECTIONS:
        return SECTIONS[request.endpoint]
    return SECTIONS.get(request.blueprint or "")


def remember_organization(slug: str) -> None:
    """Note the organisation of the page being shown, for the navigation of pages outside any (tokens, 404)."""
    if session.get(REMEMBERED_ORG) != slug:  # writing the session only on a change keeps it out of most responses
        session[REMEMBERED_ORG] = slug


def nav_organization():
    """Return the organisation whose navigation a page without one shows: the last one seen, else the first."""
    if not current_user.is_authenticated or not current_user.memberships:
        return None
    organizations = [membership.organization for membership in current_user.memberships]
    remembered = session.get(REMEMBERED_ORG)
    return next((organization for organization in organizations if organization.slug == remembered), organizations[0])
