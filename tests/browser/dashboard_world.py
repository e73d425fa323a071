"""A dashboard with something on every page (apps with a month of health, an issue, rules, an incident, a token),
the pages to visit, and the checks a small screen needs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.alert_world import raise_and_capture
from tests.conftest import PASSWORD
from tests.lifecycle import send
from webapp.accounts.tokens import create_token
from webapp.alerts.alert_rules import save_issue_rule, save_metric_rule
from webapp.alerts.workflow import add_comment
from webapp.apps.internal_apps import register_internal_app
from webapp.core import clock
from webapp.core.extensions import db
from webapp.dispatch.health import IntegrationRequestBuffer
from webapp.models import Event, Group, Incident, Membership, Organization, Project, User, utcnow

# Where screenshots go when a person wants to look at them (HOOKLINE_SCREENSHOTS=/tmp/shots pytest …).
SHOTS = os.environ.get("HOOKLINE_SCREENSHOTS")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
LONG_URL = "/hooks/" + "a-very-long-path-segment-" * 6 + "?token=0123456789abcdef0123456789abcdef"


@dataclass
class Dashboard:
    group_id: int
    incident_identifier: int
    event_id: str


@pytest.fixture
def dashboard(app, world, sdk, receiver, run_worker) -> Dashboard:
    """Fill org acme: deliveries in the request log, 30 days of health, an issue with a comment, two rules, an
    incident, an API token, a second organisation (so the organisation chooser shows), an app with a long URL."""
    send(app, world.subscribed_id, 3)
    raise_and_capture("card declined")
    run_worker()
    with app.app_context():
        owner = db.session.scalar(select(User).where(User.email == "owner@example.com"))
        organization = db.session.scalar(select(Organization).where(Organization.slug == "acme"))
        project = db.session.get(Project, world.project_id)
        register_internal_app(organization, "Long URL receiver", receiver.url(LONG_URL), ["issue"])
        group = db.session.scalar(select(Group))
        group_id, event_id = group.id, db.session.scalar(select(Event.event_id).where(Event.group_id == group.id))
        add_comment(group, "Looking into it; the card processor answers 502 since 09:12.", owner)
        db.session.commit()
        actions = [{"sentry_app_id": world.bare_id, "settings": []}]
        save_issue_rule(project, {"name": "New issues to the pager", "trigger": "first_seen", "frequency_minutes": "30"},
                        actions)
        rule = save_metric_rule(project, {"name": "Error spike", "time_window_minutes": "10", "warning_threshold": "5",
                                          "critical_threshold": "10"}, actions)
        db.session.add(Incident(organization_id=organization.id, alert_rule_id=rule.id, identifier=1,
                                title="Error spike", status="critical", metric_value=12,
                                date_started=utcnow() - timedelta(minutes=7)))
        create_token(owner, "terraform")
        other = Organization(slug="beta", name="Beta Industries")
        db.session.add(other)
        db.session.flush()
        db.session.add(Membership(user_id=owner.id, organization_id=other.id, role="member"))
        db.session.commit()
        fill_health(app, world.subscribed_id, organization.id)
    return Dashboard(group_id=group_id, incident_identifier=1, event_id=event_id)


def fill_health(app, app_id: int, organization_id: int) -> None:
    """Record a month of outcomes, with a bad week in the middle and a quiet weekend."""
    buffer = IntegrationRequestBuffer(app.extensions["redis"], app_id, organization_id)
    pipe = app.extensions["redis"].pipeline(transaction=False)
    today = clock.today()
    for offset in range(1, 30):
        day = today - timedelta(days=offset)
        if offset % 7 in (2, 3):
            continue
        outcomes = {"success": 20 + (offset * 7) % 15, "error": 6 if 10 <= offset <= 14 else offset % 3,
                    "timeout": 3 if offset == 12 else 0}
        for kind, times in outcomes.items():
            for _ in range(times):
                buffer.record(kind, day, pipe)
    pipe.execute()


def log_in(page, live_server, email="owner@example.com"):
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def screenshot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def page_width(page) -> int:
    return page.evaluate("document.scrollingElement.scrollWidth")


# Text whose contrast with what is behind it is below WCAG AA (4.5:1; 3:1 for large text).
LOW_CONTRAST = """
() => {
  const channel = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
  const rgba = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const background = el => {
    for (; el; el = el.parentElement) {
      const c = rgba(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c;
    }
    return [255, 255, 255];
  };
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node; (node = walker.nextNode());) {
    const el = node.parentElement;
    if (!node.textContent.trim() || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || el.closest('.visually-hidden, [aria-hidden=true], svg')) continue;
    const [a, b] = [luminance(rgba(style.color)), luminance(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed) found.push(`${node.textContent.trim().slice(0, 40)} (${ratio.toFixed(2)}:1)`);
  }
  return [...new Set(found)];
}
"""
