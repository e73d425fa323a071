"""The issue page's Resolve in… and Ignore until… menus: each choice, what the page then says, and refusals."""

import html
import re

import pytest

from tests.alert_world import raise_and_capture
from tests.views.test_issues import activity_lines, flashes, issue, page  # noqa: F401  (issue: a fixture)


def summary(owner, group) -> str:
    return re.search(r'<p data-testid="status-summary">(.*?)</p>', page(owner, group)).group(1)


CHOICES = [
    ({"status": "resolved", "resolution": "next"}, "Resolved in the next release.",
     "Resolved in the next release: an event of a release newer than web@1.2.3 reopens it.",
     "owner marked the issue resolved in the next release.", "in_next_release", {"inNextRelease": True}),
    ({"status": "resolved", "resolution": "release", "release": "web@1.2.3"}, "Resolved in web@1.2.3.",
     "Resolved in web@1.2.3: an event of it or of a newer release reopens it.",
     "owner marked the issue resolved in web@1.2.3.", "in_release", {"inRelease": "web@1.2.3"}),
    ({"status": "ignored", "ignore": "escalating"}, "Ignored until it escalates.",
     "Ignored until it escalates: 10 events within an hour bring it back.",
     "owner marked the issue ignored until it escalates.", None, {"ignoreUntilEscalating": True}),
    ({"status": "ignored", "ignore": "duration", "minutes": "120"}, "Ignored for 2 hours.",
     "Ignored; it comes back with the first event after 2026-11-01 14:00 UTC.",
     "owner marked the issue ignored until 2026-11-01 14:00 UTC.", None,
     {"ignoreUntil": "2026-11-01T14:00:00.000Z"}),
    ({"status": "ignored", "ignore": "count", "count": "100", "window": "60"},
     "Ignored until 100 events within an hour.",
     "Ignored; it comes back with 100 events within an hour.",
     "owner marked the issue ignored until 100 events within an hour.", None, {"ignoreCount": 100, "ignoreWindow": 60}),
    ({"status": "ignored", "ignore": "count", "count": "10", "window": ""}, "Ignored until 10 more events.",
     "Ignored; it comes back with 10 more events.", "owner marked the issue ignored until 10 more events.", None,
     {"ignoreCount": 10}),
    ({"status": "ignored", "ignore": "users", "users": "1000"}, "Ignored until 1000 more users.",
     "Ignored; it comes back with 1000 more users.", "owner marked the issue ignored until 1000 more users.", None,
     {"ignoreUserCount": 1000}),
]


@pytest.mark.parametrize("form, flash, says, activity, resolution_type, details", CHOICES)
def test_each_choice_of_the_menus(clock, owner, issue, receiver, run_worker, form, flash, says, activity,  # noqa: F811
                                  resolution_type, details):
    assert flashes(owner.post(f"/orgs/acme/issues/{issue.id}/status", form, follow_redirects=True)) == [flash]
    assert summary(owner, issue) == says
    assert activity_lines(page(owner, issue))[-1] == activity
    run_worker()
    [sent] = receiver.of(f"issue.{form['status']}")
    assert sent.json["data"]["issue"]["statusDetails"] == details
    assert sent.json["data"].get("resolution_type") == resolution_type


def test_the_menus_offer_the_projects_releases_newest_first(owner, issue, world, run_worker):  # noqa: F811
    import sentry_sdk

    sentry_sdk.init(dsn=world.dsn, default_integrations=False, release="web@2.0.0")
    raise_and_capture()
    run_worker()
    text = page(owner, issue)
    assert re.findall(r"<option>(web@[^<]+)</option>", text) == ["web@2.0.0", "web@1.2.3"]
    assert "newer than web@2.0.0" in text


@pytest.mark.parametrize("form, refusal", [
    ({"status": "resolved", "resolution": "release", "release": "web@9"},
     "inRelease: project web has no release 'web@9'"),
    ({"status": "ignored", "ignore": "duration", "minutes": "-5"}, "minutes: choose a whole number."),
    ({"status": "ignored", "ignore": "count", "count": "²"}, "count: choose a whole number."),
    ({"status": "ignored", "ignore": "duration", "minutes": "0"}, "ignoreDuration: must be a whole number from 1"),
])
def test_a_refused_choice_says_why_and_changes_nothing(owner, issue, receiver, run_worker, form, refusal):  # noqa: F811
    [shown] = [html.unescape(text) for text in flashes(owner.post(f"/orgs/acme/issues/{issue.id}/status", form,
                                                                  follow_redirects=True))]
    assert shown.startswith(refusal)
    text = page(owner, issue)
    assert 'data-testid="issue-status">unresolved<' in text and "status-summary" not in text
    run_worker()
    assert receiver.received == []
