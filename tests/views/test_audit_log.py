"""The audit log page: every change in words, logins, filters by event, person and day, pages of 50."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD, Session
from webapp.accounts.people import get_or_create_organization
from webapp.core.audit import record_audit
from webapp.core.extensions import db
from webapp.models import ApiToken, AuditLogEntry, Membership, Organization, ProjectKey, SentryApp, find_user_by_email

APP = {"name": "Pager bridge", "webhook_url": "https://93.184.216.34/hook", "issue": "y", "comment": "y"}
# A cell may carry attributes (data-label: the column's name, shown above the value on a phone).
ROW = re.compile(r'<tr class="audit-row"><td[^>]*>.*?</td><td[^>]*>(.*?)</td>\s*<td[^>]*>(.*?)<br><small class="muted">'
                 r'<code>(.*?)</code></small></td><td[^>]*>(.*?)</td>\s*<td[^>]*>(.*?)</td></tr>', re.S)
T0 = datetime(2026, 11, 1, 0, 0)


def audit_rows(session, query: str = "") -> list[dict]:
    """Return the rows of one page of the log as a person reads them."""
    response = session.get(f"/orgs/acme/audit-log{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return rows_of(response.get_data(as_text=True))


def rows_of(page: str) -> list[dict]:
    return [{"who": html.unescape(who), "label": html.unescape(label), "event": event, "target": html.unescape(target),
             "details": [html.unescape(line) for line in re.findall(r"<div>(.*?)</div>", details)]}
            for who, label, event, target, details in ROW.findall(page)]


def row_of(rows: list[dict], event: str) -> dict:
    [row] = [row for row in rows if row["event"] == event]
    return row


def test_each_change_is_in_the_log_in_words(app, owner):
    owner.post("/orgs/acme/apps/new", APP)
    owner.post("/orgs/acme/projects", {"name": "Web shop"})
    owner.post("/orgs/acme/projects/web-shop/settings", {"key_rate_limit": "7"})
    owner.post("/orgs/acme/projects/web-shop/keys", {"label": "Mobile"})
    with app.app_context():
        app_id = db.session.scalar(select(SentryApp.id))
        key = db.session.scalar(select(ProjectKey.public_key).where(ProjectKey.label == "Mobile"))
    for action in ("disable", "enable", "delete"):
        owner.post(f"/orgs/acme/projects/web-shop/keys/{key}/{action}", {"confirm": "1"})
    rule = {"name": "Ops pager", "trigger": "every_event", "frequency_minutes": "15", f"app_{app_id}": "on"}
    owner.post("/orgs/acme/projects/web-shop/rules/new", rule)
    owner.post("/orgs/acme/projects/web-shop/rules/1", {**rule, "frequency_minutes": "60",
                                                        f"settings_{app_id}": "channel=#ops"})
    owner.post("/orgs/acme/projects/web-shop/rules/1/delete", {"confirm": "1"})
    owner.post("/orgs/acme/projects/web-shop/metric-rules/new", {"name": "Spike", "time_window_minutes": "10",
                                                                 "critical_threshold": "5", f"app_{app_id}": "on"})
    owner.post("/orgs/acme/settings", {"name": "Acme Corp", "slug": "acme"})
    token_page = owner.post("/settings/tokens", {"name": "CI deploys"}).get_data(as_text=True)
    token = re.search(r"hkl_[A-Za-z0-9_-]+", token_page).group(0)
    with app.app_context():
        token_id = db.session.scalar(select(ApiToken.id).where(ApiToken.name == "CI deploys"))
    owner.post(f"/settings/tokens/{token_id}/revoke", {"confirm": "1"})
    owner.post("/orgs/acme/apps/pager-bridge/test-alert")
    owner.post("/orgs/acme/apps/pager-bridge/edit", {"name": "Pager bridge", "webhook_url": "https://93.184.216.35/v2",
                                                     "issue": "y"})
    owner.post("/orgs/acme/apps/pager-bridge/disable", {"reason": "receiver moves", "confirm": "1"})
    owner.post("/orgs/acme/apps/pager-bridge/enable")
    owner.post("/orgs/acme/apps/pager-bridge/rotate-secret", {"confirm": "1"})
    owner.post("/orgs/acme/apps/pager-bridge/delete", {"name": "Pager bridge"})

    page = owner.get("/orgs/acme/audit-log").get_data(as_text=True)
    rows = rows_of(page)
    expected = {
        "app.create": ("App registered", "Pager bridge", ["url: https://93.184.216.34/hook", "resources: issue, comment"]),
        "project.create": ("Project created", "Web shop", ["slug: web-shop"]),
        "project.edit": ("Project edited", "Web shop", ["events per minute per key: none → 7"]),
        "project-key.create": ("Client key created", "Mobile", ["project: web-shop", f"public key: {key}",
                                                               "label: Mobile", "events per minute: none"]),
        "project-key.disable": ("Client key disabled", "Mobile", ["project: web-shop", f"public key: {key}"]),
        "project-key.enable": ("Client key enabled", "Mobile", ["project: web-shop", f"public key: {key}"]),
        "project-key.remove": ("Client key deleted", "Mobile", ["project: web-shop", f"public key: {key}", "label: Mobile"]),
        "alert-rule.create": ("Issue alert rule created", "Ops pager", [
            "project: web-shop", "name: Ops pager", "trigger: every_event", "lowest level: none",
            "at most every (minutes): 15", "sends to: Pager bridge"]),
        "alert-rule.edit": ("Issue alert rule edited", "Ops pager", [
            "at most every (minutes): 15 → 60", "sends to: Pager bridge → Pager bridge (channel=#ops)"]),
        "alert-rule.remove": ("Issue alert rule deleted", "Ops pager", ["project: web-shop"]),
        "metric-alert-rule.create": ("Metric alert rule created", "Spike", [
            "project: web-shop", "name: Spike", "window (minutes): 10", "critical threshold: 5",
            "warning threshold: none", "resolve threshold: none", "sends to: Pager bridge"]),
        "org.edit": ("Organisation settings changed", "Acme Corp", ["name: Acme → Acme Corp"]),
        "token.create": ("API token created", "CI deploys", ["label: CI deploys"]),
        "token.revoke": ("API token revoked", "CI deploys", ["label: CI deploys"]),
        "app.test-alert": ("Test alert sent", "Pager bridge", ["url: https://93.184.216.34/hook"]),
        "app.edit": ("App edited", "Pager bridge", ["url: https://93.184.216.34/hook → https://93.184.216.35/v2",
                                                    "resources: issue, comment → issue"]),
        "app.disable": ("App disabled", "Pager bridge", ["reason: receiver moves", "manual: yes"]),
        "app.enable": ("App re-enabled", "Pager bridge", []),
        "app.remove": ("App deleted", "Pager bridge", ["url: https://93.184.216.35/v2"]),
    }
    for event, (label, target, details) in expected.items():
        assert (row_of(rows, event)["label"], row_of(rows, event)["target"], row_of(rows, event)["details"]) == \
            (label, target, details), event
    assert all(row["who"] == "owner@example.com" for row in rows)
    rotated = row_of(rows, "app.rotate-secret")
    assert rotated["label"] == "App secret rotated" and rotated["details"][0].startswith("old secret valid until: ")
    assert [row["event"] for row in rows][:2] == ["app.remove", "app.rotate-secret"]  # newest first
    assert token not in page and "{" not in "".join(line for row in rows for line in row["details"])


def add_membership(app, email: str, org_slug: str) -> None:
    with app.app_context():
        organization = get_or_create_organization(org_slug)
        db.session.add(Membership(user_id=find_user_by_email(email).id, organization_id=organization.id, role="owner"))
        db.session.commit()


def entries_by_org(app) -> dict[str, list[tuple]]:
    with app.app_context():
        found: dict[str, list[tuple]] = {}
        for entry in db.session.scalars(select(AuditLogEntry).order_by(AuditLogEntry.id)):
            slug = db.session.get(Organization, entry.organization_id).slug
            found.setdefault(slug, []).append((entry.event, entry.actor_label, entry.data.get("reason")))
        return found


def test_logins_are_recorded_in_every_organisation_of_the_person(app, make_user, run_worker):
    make_user("owner@example.com", "acme", "owner")
    add_membership(app, "owner@example.com", "beta")
    browser = Session(app.test_client())
    assert browser.login("owner@example.com", "not-the-password").status_code == 400
    assert browser.login("nobody@example.com", "whatever-it-is").status_code == 400  # no account: no entry
    run_worker()  # a failed login is recorded by a job, so it takes as long whether or not the email has an account
    assert browser.login("owner@example.com", PASSWORD).status_code == 302
    expected = [("login.failure", "Not logged in", "wrong password"), ("login.success", "owner@example.com", None)]
    assert entries_by_org(app) == {"acme": expected, "beta": expected}
    rows = audit_rows(browser)
    assert [(row["label"], row["who"], row["target"], row["details"]) for row in rows] == [
        ("Logged in", "owner@example.com", "owner@example.com", ["IP address: 127.0.0.1"]),
        ("Login failed", "Not logged in", "owner@example.com", ["IP address: 127.0.0.1", "reason: wrong password"]),
    ]


def test_a_throttled_login_is_recorded_once_while_it_stays_throttled(app, make_user, run_worker):
    make_user("owner@example.com", "acme", "owner")
    browser = Session(app.test_client())
    answers = [browser.login("owner@example.com", f"guess-{n}").status_code for n in range(8)]
    assert answers == [400] * 5 + [429] * 3
    run_worker()
    reasons = [reason for _, _, reason in entries_by_org(app)["acme"]]
    assert reasons == ["wrong password"] * 5 + ["throttled"]


@pytest.fixture
def filled(app, owner):
    """120 edits by the owner on 1 Nov, 3 automatic disables on 5 Nov; return the owner's id."""
    with app.app_context():
        organization_id = db.session.scalar(select(Organization.id).where(Organization.slug == "acme"))
        owner_id = find_user_by_email("owner@example.com").id
        for n in range(120):
            entry = record_audit(organization_id, "app.edit", actor_id=owner_id, target_label=f"App {n:03}",
                                 data={"name": [f"Old {n}", f"App {n:03}"]})
            entry.datetime = T0 + timedelta(minutes=n)
        for n in range(3):
            entry = record_audit(organization_id, "app.disable", target_label=f"Broken {n}", data={"reason": "410 Gone"})
            entry.datetime = T0 + timedelta(days=4, hours=n)
        db.session.commit()
    return owner_id


def test_pages_of_50_newest_first_without_overlap(owner, filled):
    seen, query, pages = [], "?event=app.edit", []
    while query is not None:
        page = owner.get(f"/orgs/acme/audit-log{query}").get_data(as_text=True)
        pages.append(page)
        seen += [row["target"] for row in rows_of(page)]
        found = re.search(r'<a rel="next" href="/orgs/acme/audit-log(\?[^"]*)"', page)
        query = html.unescape(found.group(1)) if found else None
    assert [len(rows_of(page)) for page in pages] == [50, 50, 20]
    assert seen == [f"App {n:03}" for n in range(119, -1, -1)]  # all 120, newest first, none twice
    assert 'rel="prev"' not in pages[0] and 'rel="prev"' in pages[2] and "event=app.edit" in pages[2]
    assert '<option value="app.edit" selected>' in pages[1]


def test_filters_by_event_person_and_day(owner, filled):
    automatic = audit_rows(owner, "?actor=hookline")
    assert [row["target"] for row in automatic] == ["Broken 2", "Broken 1", "Broken 0"]
    assert {row["who"] for row in automatic} == {"Hookline"}
    by_owner = audit_rows(owner, f"?actor={filled}&page=3")
    assert {row["who"] for row in by_owner} == {"owner@example.com"} and "app.disable" not in {r["event"] for r in by_owner}
    assert [row["target"] for row in audit_rows(owner, "?start=2026-11-05&end=2026-11-05")] == [
        "Broken 2", "Broken 1", "Broken 0"]
    first_hour = audit_rows(owner, "?event=app.edit&start=2026-11-01T00:30:00Z&end=2026-11-01T00:39:59Z")
    assert [row["target"] for row in first_hour] == [f"App {n:03}" for n in range(39, 29, -1)]
    assert audit_rows(owner, "?event=app.remove") == []
    assert "No entries match these filters." in owner.get("/orgs/acme/audit-log?event=app.remove").get_data(as_text=True)
    assert len(audit_rows(owner, "?page=not-a-number")) == 50  # the first page


@pytest.mark.parametrize("query, message", [
    ("?event=app.explode", "Event: unknown event &#39;app.explode&#39;"),
    ("?actor=someone", "Who: &#39;someone&#39; is not the id of anyone in this organisation"),
    ("?actor=99999", "Who: &#39;99999&#39; is not the id of anyone in this organisation"),
    ("?start=yesterday", "From: &#39;yesterday&#39; is not a date such as 2026-11-01"),
    ("?end=2026-02-30", "To: &#39;2026-02-30&#39; is not a date"),
    ("?start=2026-11-05&end=2026-11-01", "To: must be after start."),
])
def test_a_bad_filter_is_named_on_the_page(owner, filled, query, message):
    response = owner.get(f"/orgs/acme/audit-log{query}")
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and message in page and 'role="alert"' in page
    assert rows_of(page) == [] and "Clear filters" in page


def test_members_cannot_read_the_log(app, owner, make_user):
    make_user("member@example.com", "acme", "member")
    member = Session(app.test_client())
    member.login("member@example.com")
    assert member.get("/orgs/acme/audit-log?event=app.edit").status_code == 403
