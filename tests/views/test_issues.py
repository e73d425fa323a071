"""A person acting on an issue, and the workflow webhooks subscribed apps receive."""

import re

import pytest

from tests.alert_world import raise_and_capture
from webapp.extensions import db
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
    assert "Unknown status" in text and 'data-testid="issue-status">unresolved<' in text
    assert receiver.received == []


def test_assign_to_a_member_then_unassign(app, owner, issue, receiver, run_worker, make_user):
    with app.app_context():
        from webapp.accounts import create_user

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
        from webapp.accounts import create_user

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
    owner.post(f"/orgs/acme/issues/{issue.id}/comments/{comment_id}/delete")
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
    member.post(f"/orgs/acme/issues/{issue.id}/comments/{comment_id}/delete")
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
