"""axe-core over every main page at desktop and phone width: no serious or critical violation.

axe-core is vendored (tests/browser/vendor/axe.min.js, MPL-2.0) so this runs wherever Python runs. Playwright
adds it as a script tag, which the Content-Security-Policy would refuse: these pages are loaded with CSP bypassed
(every other browser test keeps it and fails on a violation).
"""

from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.browser.dashboard_world import DESKTOP, PHONE, dashboard, log_in, screenshot  # noqa: F401
from tests.browser.test_layout import main_pages

AXE = Path(__file__).parent / "vendor" / "axe.min.js"

# Each violation as one readable line: rule, impact, and where.
RUN_AXE = """
async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')}`);
}
"""


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "bypass_csp": True}


def open_states(page: Page, live_server: str, dashboard) -> list[tuple[str, callable]]:
    """Pages in a state a person gets to by clicking: a request opened in the log, local variables unfolded."""
    def inspector():
        page.goto(f"{live_server}/orgs/acme/apps/everything")
        page.locator("tr.log-row").first.click()
        page.locator("tr.inspector").first.wait_for()

    def local_variables():
        page.goto(f"{live_server}/orgs/acme/issues/{dashboard.group_id}/events/{dashboard.event_id}")
        for summary in page.locator("details.frame-vars > summary").all():
            if summary.is_visible():
                summary.click()
    return [("app-page-inspector", inspector), ("event-local-variables", local_variables)]


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1280", "390"])
def test_no_serious_accessibility_violation_on_any_main_page(page: Page, dashboard, live_server, size):
    page.set_viewport_size(size)
    log_in(page, live_server)
    visits = [(name, lambda path=path: page.goto(f"{live_server}{path}")) for name, path, _, _ in main_pages(dashboard)]
    problems = []
    for name, visit in visits + open_states(page, live_server, dashboard):
        visit()
        page.wait_for_load_state()
        page.add_script_tag(path=str(AXE))
        problems += [f"{name} at {size['width']} px: {line}" for line in page.evaluate(RUN_AXE)]
    assert problems == []
