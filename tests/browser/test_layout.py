"""Every main page on a 390 px phone: no sideways scrolling, Log out in view, the navigation says where you are,
and text readable against its background (WCAG AA)."""

from playwright.sync_api import Page, expect

from tests.browser.dashboard_world import (  # noqa: F401  (dashboard is a fixture)
    DESKTOP,
    LOW_CONTRAST,
    PHONE,
    dashboard,
    log_in,
    page_width,
    screenshot,
)


def main_pages(dashboard):
    """(name, path, the organisation navigation's current entry, the main navigation's current entry)."""
    group, incident = dashboard.group_id, dashboard.incident_identifier
    return [
        ("orgs", "/", None, None),
        ("apps-list", "/orgs/acme/apps", "Apps", None),
        ("app-page", "/orgs/acme/apps/everything", "Apps", None),
        ("app-long-url", "/orgs/acme/apps/long-url-receiver", "Apps", None),
        ("new-app", "/orgs/acme/apps/new", "Apps", None),
        ("delete-app", "/orgs/acme/apps/everything/delete", "Apps", None),
        ("recover", "/orgs/acme/apps/everything/recover?since=2000-01-01T00:00", "Apps", None),
        ("projects", "/orgs/acme/projects", "Projects", None),
        ("project", "/orgs/acme/projects/web", "Projects", None),
        ("metric-rule-form", "/orgs/acme/projects/web/metric-rules/new", "Projects", None),
        ("issues", "/orgs/acme/issues", "Issues", None),
        ("issue", f"/orgs/acme/issues/{group}", "Issues", None),
        ("event", f"/orgs/acme/issues/{group}/events/{dashboard.event_id}", "Issues", None),
        ("incidents", "/orgs/acme/incidents", "Incidents", None),
        ("incident", f"/orgs/acme/incidents/{incident}", "Incidents", None),
        ("tokens", "/settings/tokens", None, "API tokens"),
        ("api-docs", "/api-docs", None, "API docs"),
        ("members", "/orgs/acme/members", "Members", None),
        ("password", "/settings/password", None, "Password"),
        ("audit-log", "/orgs/acme/audit-log", "Audit log", None),
        ("settings", "/orgs/acme/settings", "Settings", None),
        ("not-found", "/orgs/acme/apps/no-such-app", None, None),
    ]


def current(page: Page, navigation: str) -> list[str]:
    return page.get_by_role("navigation", name=navigation).locator("a[aria-current=page]").all_inner_texts()


def test_every_main_page_fits_a_phone_and_marks_where_you_are(page: Page, dashboard, live_server):
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server}/login")
    problems = [f"login: {page_width(page)} px wide"] if page_width(page) > 390 else []
    problems += [f"login: low contrast {text}" for text in page.evaluate(LOW_CONTRAST)]
    screenshot(page, "phone-login")
    log_in(page, live_server)
    for name, path, org_section, main_section in main_pages(dashboard):
        page.goto(f"{live_server}{path}")
        page.wait_for_load_state()
        screenshot(page, f"phone-{name}")
        if page_width(page) > 390:
            problems.append(f"{name}: the page is {page_width(page)} px wide")
        logout = page.get_by_role("button", name="Log out").bounding_box()
        if not logout or logout["x"] + logout["width"] > 390:
            problems.append(f"{name}: Log out is out of view ({logout})")
        problems += [f"{name}: low contrast {text}" for text in page.evaluate(LOW_CONTRAST)]
        if name == "orgs":
            expect(page.get_by_role("heading", name="Your organisations")).to_be_visible()
            continue
        if current(page, "Acme") != ([org_section] if org_section else []):
            problems.append(f"{name}: the organisation navigation marks {current(page, 'Acme')}, not {org_section}")
        if current(page, "Main") != ([main_section] if main_section else []):
            problems.append(f"{name}: the main navigation marks {current(page, 'Main')}, not {main_section}")
    assert problems == []


def test_not_found_page_has_the_navigation(page: Page, dashboard, live_server):
    log_in(page, live_server)
    response = page.goto(f"{live_server}/orgs/acme/apps/no-such-app")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    page.get_by_role("navigation", name="Acme").get_by_role("link", name="Issues").click()
    expect(page.get_by_role("heading", name="Issues")).to_be_visible()


def test_app_page_and_apps_list_at_desktop_width(page: Page, dashboard, live_server):
    page.set_viewport_size(DESKTOP)
    log_in(page, live_server)
    page.goto(f"{live_server}/orgs/acme/apps")
    screenshot(page, "desktop-apps-list")
    expect(page.locator(".sparkline")).to_have_count(1)  # Everything has a month of deliveries
    expect(page.locator(".sparkline-empty")).to_have_count(2)
    expect(page.locator(".sparkline-empty").first).to_have_text("No deliveries in the last 7 days")  # part hidden
    page.goto(f"{live_server}/orgs/acme/apps/everything")
    screenshot(page, "desktop-app-page")
    chart = page.get_by_test_id("health-chart").locator("svg")
    box = chart.bounding_box()
    card = page.get_by_test_id("health-chart").bounding_box()
    assert abs(box["width"] - card["width"]) < 1  # the chart fills its card
    assert page.locator(".health-axis .tick > span").count() == 5  # five dates under 30 day cells
    page.set_viewport_size(PHONE)
    assert chart.bounding_box()["width"] < 390  # and shrinks with it
    screenshot(page, "phone-app-page-after-resize")
