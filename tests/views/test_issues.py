"""A person acting on an issue, and the workflow webhooks subscribed apps receive."""

import re
from datetime import timedelta

import pytest

from tests.alert_world import raise_and_capture
from webapp.core.extensions import db
from webapp.models import Comment, Group, SentryApp


@pytest.fixture
def issue(world, sdk, run_worker, receiver):
    raise_and_capture("card declined")
    run_worker()
    receiver.received.clear()
    return world.groups()[0]


def page(owner, group):
    return owner.get(f"/orgs/acme/issues/{group.id}").get_data(as_text=True)


@pytest.mark.parametrize("status", ["resolved", "ignored"])
def test_status_buttons_send_issue_webhooks_with_the_person_as_actor(owner, issue, receiver, run_worker, status):
    response = owner.post(f"/orgs/acme/issues/{issue.id}/status", {"status": status})
    assert response.status_code == 303
    run_worker()
    [sent] = receiver.of(f"issue.{status}")
    assert sent.path == "/all" and sent.sentry_signature_ok
    assert sent.json["data"]["issue"]["status"] == status
    actor = sent.json["actor"]
    assert actor["type"] == "user" and actor["name"] == "owner" and isinstance(actor["id"], int)
    assert f'data-testid="issue-status">{status}<' in page(owner, issue)

    owner.post(f"/orgs/acme/issues/{issue.id}/status", {"status": "unresolved"})
    run_worker()
    assert receiver.of("issue.unresolved")[0].json["actor"]["type"] == "user"


def test_setting_the_same_status_again_sends_nothing(owner, issue, receiver, run_worker):
    owner.post(f"/orgs/acme/issues/{issue.id}/status", {"status": "unresolved"})
    run_worker()
    assert receiver.received == []


def test_unknown_status_changes_nothing(owner, issue, receiver, run_worker):
    owner.post(f"/orgs/acme/issues/{issue.id}/status", {"status": "deleted"})
    run_worker()
    text = page(owner, issue)
    assert "status: must be one of unresolved, resolved, ignored" in text and 'data-testid="issue-status">unresolved<' in text
    assert receiver.received == []


def test_assign_to_a_member_then_unassign(app, owner, issue, receiver, run_worker, make_user):
    with app.app_context():
        from webapp.accounts.people import create_user

        member = create_user("dev@example.com", "correct-horse-battery", "acme", "member").id
    owner.post(f"/orgs/acme/issues/{issue.id}/assign", {"assignee": str(member)})
    owner.post(f"/orgs/acme/issues/{issue.id}/assign", {"assignee": ""})
    run_worker()
    # Sentry sends issue.assigned on an assignment only: a receiver reading assignee.email never gets a null.
    [assigned] = receiver.of("issue.assigned")
    assert assigned.json["data"]["issue"]["assignedTo"] == {"type": "user", "id": str(member), "name": "dev",
                                                            "email": "dev@example.com"}
    assert assigned.json["data"]["assignee"] == {"type": "user", "id": member, "name": "dev", "email": "dev@example.com"}
    with app.app_context():
        assert db.session.get(Group, issue.id).assignee_id is None  # the unassignment itself was made


def test_cannot_assign_to_someone_outside_the_org(app, owner, issue, receiver, run_worker):
    with app.app_context():
        from webapp.accounts.people import create_user

        outsider = create_user("eve@example.com", "correct-horse-battery", "evil", "owner").id
    owner.post(f"/orgs/acme/issues/{issue.id}/assign", {"assignee": str(outsider)})
    run_worker()
    assert "only be assigned to members" in page(owner, issue)
    assert receiver.received == []


def test_comments_create_edit_delete(app, owner, issue, receiver, run_worker):
    owner.post(f"/orgs/acme/issues/{issue.id}/comments", {"text": "Looking <b>into</b> it"})
    with app.app_context():
        comment_id = db.session.query(Comment).one().id
    assert "Looking &lt;b&gt;into&lt;/b&gt; it" in page(owner, issue)
    owner.post(f"/orgs/acme/issues/{issue.id}/comments/{comment_id}", {"text": "Fixed in 1.2.4"})
    asked = owner.post(f"/orgs/acme/issues/{issue.id}/comments/{comment_id}/delete")  # without JavaScript: a page asks
    assert asked.status_code == 200 and "Delete this comment?" in asked.get_data(as_text=True)
    assert "Fixed in 1.2.4" in page(owner, issue)
    owner.post(f"/orgs/acme/issues/{issue.id}/comments/{comment_id}/delete", {"confirm": "1"})
    run_worker()
    created, updated, deleted = (receiver.of(f"comment.{a}")[0].json for a in ("created", "updated", "deleted"))
    assert created["data"]["comment"] == "Looking <b>into</b> it"
    assert set(created["data"]) == {"comment_id", "issue_id", "project_slug", "timestamp", "comment"}
    assert created["data"]["issue_id"] == issue.id and created["data"]["project_slug"] == "web"  # ints, as Sentry
    assert updated["data"]["comment"] == "Fixed in 1.2.4" and updated["data"]["comment_id"] == comment_id
    assert deleted["data"]["comment_id"] == comment_id
    assert created["actor"]["type"] == "user"
    assert "No comments yet." in page(owner, issue)


def test_empty_comment_is_refused(app, owner, issue, receiver, run_worker):
    owner.post(f"/orgs/acme/issues/{issue.id}/comments", {"text": "   "})
    run_worker()
    assert "A comment cannot be empty." in page(owner, issue)
    with app.app_context():
        assert db.session.query(Comment).count() == 0
    assert receiver.received == []


def test_only_the_author_edits_and_members_cannot_delete_others(app, owner, issue, make_user, receiver, run_worker):
    owner.post(f"/orgs/acme/issues/{issue.id}/comments", {"text": "mine"})
    with app.app_context():
        comment_id = db.session.query(Comment).one().id
    make_user("member@example.com", "acme", "member")
    member = type(owner)(app.test_client())
    member.login("member@example.com")
    member.post(f"/orgs/acme/issues/{issue.id}/comments/{comment_id}", {"text": "hijacked"})
    member.post(f"/orgs/acme/issues/{issue.id}/comments/{comment_id}/delete", {"confirm": "1"})
    with app.app_context():
        assert db.session.get(Comment, comment_id).text == "mine"


def test_unsubscribed_apps_get_no_workflow_webhooks(app, owner, issue, receiver, run_worker, world):
    with app.app_context():
        db.session.get(SentryApp, world.subscribed_id).resources = "error"
        db.session.commit()
    owner.post(f"/orgs/acme/issues/{issue.id}/status", {"status": "resolved"})
    owner.post(f"/orgs/acme/issues/{issue.id}/comments", {"text": "x"})
    run_worker()
    assert receiver.received == []


def test_another_orgs_issue_is_404(app, issue, make_user, owner):
    make_user("eve@example.com", "evil", "owner")
    eve = type(owner)(app.test_client())
    eve.login("eve@example.com")
    for path in [f"/orgs/acme/issues/{issue.id}", f"/orgs/evil/issues/{issue.id}"]:
        assert eve.get(path).status_code == 404
    assert eve.post(f"/orgs/evil/issues/{issue.id}/status", {"status": "resolved"}).status_code == 404
    assert eve.get(f"/api/0/organizations/acme/issues/{issue.id}/").status_code == 404
    assert app.test_client().get(f"/api/0/organizations/acme/issues/{issue.id}/").status_code == 401


def test_issue_list_and_event_page(owner, issue):
    listing = owner.get("/orgs/acme/issues").get_data(as_text=True)
    assert "ValueError: card declined" in listing and "WEB-1" in listing
    assert "ValueError: card declined" not in owner.get("/orgs/acme/issues?status=resolved").get_data(as_text=True)
    event_link = re.search(r'href="(/orgs/acme/issues/\d+/events/\w+)"', page(owner, issue)).group(1)
    assert "charge_card" in owner.get(event_link).get_data(as_text=True)


def flashes(response) -> list[str]:
    return re.findall(r'<p class="flash flash-\w+" role="status">([^<]*)</p>', response.get_data(as_text=True))


def activity_lines(page: str) -> list[str]:
    """Return the timeline's entries as text, oldest first (tags and the time stripped)."""
    timeline = re.search(r'<ol class="timeline" data-testid="activity">(.*?)</ol>', page, re.S).group(1)
    lines = re.findall(r'<p class="activity-line">(.*?)<time', timeline, re.S)
    return [" ".join(re.sub(r"<[^>]+>", "", line).split()) for line in lines]


def test_each_action_is_flashed_and_kept_in_the_activity_with_who_did_it(app, owner, issue):
    with app.app_context():
        from webapp.accounts.people import create_user

        ann = create_user("ann@example.com", "correct-horse-battery", "acme", "member", name="Ann").id
    base = f"/orgs/acme/issues/{issue.id}"
    for path, form, message in [
        ("/status", {"status": "resolved"}, "Resolved."),
        ("/status", {"status": "resolved"}, "Already resolved."),
        ("/assign", {"assignee": str(ann)}, "Assigned to Ann."),
        ("/assign", {"assignee": ""}, "Unassigned."),
        ("/comments", {"text": "Line one <b>\r\nline two"}, "Comment added."),
        ("/status", {"status": "ignored"}, "Ignored."),
        ("/status", {"status": "unresolved"}, "Unresolved."),
    ]:
        assert flashes(owner.post(base + path, form, follow_redirects=True)) == [message]
    page = owner.get(base).get_data(as_text=True)
    assert "Resolved." not in page and "Unresolved." not in page  # each flash is shown once
    assert activity_lines(page) == [
        "First seen: the first event created this issue.",
        "owner marked the issue resolved.",
        "owner assigned the issue to Ann.",
        "owner unassigned the issue.",
        "owner commented:",
        "owner marked the issue ignored.",
        "owner marked the issue unresolved.",
    ]
    # The comment keeps its line break (the page shows it with white-space: pre-wrap), escaped.
    assert '<p class="comment-text">Line one &lt;b&gt;\nline two</p>' in page
    response = app.test_client().get("/static/style.css")
    css = response.get_data(as_text=True)
    response.close()
    assert re.search(r"\.comment-text \{[^}]*white-space: pre-wrap", css)
    first_event = re.search(r'First seen: <a href="(/orgs/acme/issues/\d+/events/\w+)">', page).group(1)
    assert owner.get(first_event).status_code == 200


def test_a_new_event_on_a_resolved_issue_is_a_regression_in_the_activity(app, owner, issue, run_worker):
    owner.post(f"/orgs/acme/issues/{issue.id}/status", {"status": "resolved"})
    raise_and_capture("card declined")
    run_worker()
    raise_and_capture("card declined")  # the issue is unresolved now: nothing new to note
    run_worker()
    page = owner.get(f"/orgs/acme/issues/{issue.id}").get_data(as_text=True)
    assert 'data-testid="issue-status">unresolved<' in page
    assert activity_lines(page) == [
        "First seen: the first event created this issue.",
        "owner marked the issue resolved.",
        "Regression: a new event reopened this resolved issue.",
    ]
    with app.app_context():
        from webapp.models import Activity, Event

        regression = db.session.query(Activity).filter_by(kind="regression").one()
        second_event = db.session.query(Event).order_by(Event.id).all()[1]
        assert regression.data == {"event_id": second_event.event_id} and regression.user_id is None


def test_editing_a_comment_marks_it_edited_and_deleting_it_removes_its_entry(app, owner, issue):
    owner.post(f"/orgs/acme/issues/{issue.id}/comments", {"text": "first"}, follow_redirects=True)
    with app.app_context():
        comment_id = db.session.query(Comment).one().id
    response = owner.post(f"/orgs/acme/issues/{issue.id}/comments/{comment_id}", {"text": "second\nthought"},
                          follow_redirects=True)
    assert flashes(response) == ["Comment saved."]
    page = response.get_data(as_text=True)
    assert "owner commented (edited):" in activity_lines(page)
    assert '<p class="comment-text">second\nthought</p>' in page
    response = owner.post(f"/orgs/acme/issues/{issue.id}/comments/{comment_id}/delete", {"confirm": "1"},
                          follow_redirects=True)
    assert flashes(response) == ["Comment deleted."]
    assert activity_lines(response.get_data(as_text=True)) == ["First seen: the first event created this issue."]


def test_the_issue_page_charts_14_days_of_events_and_shows_the_latest_stack_trace(clock, app, owner, issue, run_worker):
    clock.advance(days=-3)
    raise_and_capture("card declined")
    run_worker()  # the worker stores it, with the time it is stored
    clock.advance(days=3)
    raise_and_capture("card declined")
    raise_and_capture("card declined")
    run_worker()
    page = owner.get(f"/orgs/acme/issues/{issue.id}").get_data(as_text=True)
    today, three_days_ago = clock.now().date(), (clock.now() - timedelta(days=3)).date()
    chart = re.search(r'<svg class="events-chart" role="img"[^>]*aria-label="([^"]*)"', page).group(1)
    days = dict(part.split(": ") for part in chart.split(": ", 1)[1].split("; "))
    assert len(days) == 14 and list(days)[-1] == today.isoformat()
    assert (days[today.isoformat()], days[three_days_ago.isoformat()]) == ("3", "1")  # with the issue's first event
    assert f"<td>{today.isoformat()}</td><td>3</td>" in page  # the same as a table
    summary = re.search(r'data-testid="chart-summary">([^<]*)<', page).group(1)
    assert summary == f"4 events in the last 14 days; the most on {today.isoformat()} (3)."
    latest = page[page.index("Stack trace of the latest event"):]
    assert '<code class="frame-function">charge_card</code>' in latest and "<mark>    raise error(message)</mark>" in latest
