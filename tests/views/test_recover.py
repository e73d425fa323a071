"""Recovery in one step: every message that failed since a moment, sent again under its own webhook-id."""

from tests.conftest import Session
from tests.lifecycle import send
from webapp.core.extensions import db
from webapp.models import SentryApp

PAGE = "/orgs/acme/apps/pager"


def login(app, email):
    session = Session(app.test_client())
    session.login(email)
    return session


def test_the_failed_messages_since_a_moment_are_counted_then_resent_each_under_its_own_webhook_id(
        app, pager, receiver, run_worker):
    receiver.answer(500, "database is down")
    failed = send(app, pager, 3)
    run_worker()  # three failed first attempts (their retries wait in the scheduled registry)
    receiver.answer(200)
    delivered = send(app, pager)
    run_worker()
    assert len(receiver.received) == 4
    owner = login(app, "owner@example.com")
    assert 'data-testid="recover-link"' in owner.get(PAGE).get_data(as_text=True)

    page = owner.get(f"{PAGE}/recover?since=2000-01-01T00:00").get_data(as_text=True)
    assert "3 failed messages</strong>" in page and all(message_id in page for message_id in failed)
    assert delivered[0] not in page  # delivered: not failed
    response = owner.post(f"{PAGE}/recover", {"since": "2000-01-01T00:00"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"{PAGE}#request-log")
    assert "Resending 3 failed messages since 2000-01-01 00:00 UTC" in owner.get(PAGE).get_data(as_text=True)
    run_worker()
    resent = receiver.received[4:]
    assert sorted(request.headers["Webhook-Id"] for request in resent) == sorted(failed)
    assert all(request.sentry_signature_ok for request in resent)
    # Their newest attempts succeeded: nothing is failed any more.
    page = owner.get(f"{PAGE}/recover?since=2000-01-01T00:00").get_data(as_text=True)
    assert "No message has failed since 2000-01-01 00:00 UTC" in page


def test_recovery_is_for_owners_and_managers_of_an_enabled_app_and_a_bad_time_changes_nothing(
        app, pager, receiver, run_worker, make_user):
    receiver.answer(500)
    send(app, pager)
    run_worker()
    assert login(app, "member@example.com").post(f"{PAGE}/recover", {"since": "2000-01-01T00:00"}).status_code == 403
    make_user("eve@example.com", "evil", "owner")
    assert login(app, "eve@example.com").get(f"{PAGE}/recover").status_code == 404
    owner = login(app, "owner@example.com")
    bad = owner.post(f"{PAGE}/recover", {"since": "yesterday"})
    assert bad.status_code == 400 and "Enter a time such as 2026-11-01T09:30 (UTC)." in bad.get_data(as_text=True)
    with app.app_context():
        db.session.get(SentryApp, pager).status = "disabled"
        db.session.commit()
    owner.post(f"{PAGE}/recover", {"since": "2000-01-01T00:00"})
    assert "is disabled: re-enable it (with replay)" in owner.get(PAGE).get_data(as_text=True)
    run_worker()
    assert len(receiver.received) == 1  # nothing was resent


def test_the_api_counts_and_resends_the_failed_messages(app, pager, receiver, run_worker):
    from tests.api.conftest import Api
    from webapp.accounts.tokens import create_token
    from webapp.models.accounts import find_user_by_email

    with app.app_context():
        _, token = create_token(find_user_by_email("manager@example.com"), "recovery")
        db.session.remove()
    api = Api(app.test_client(), {"manager": token})
    receiver.answer(503)
    failed = send(app, pager, 2)
    run_worker()
    receiver.answer(200)
    url = "/api/0/sentry-apps/pager/webhook-requests/recover/"
    counted = api("GET", f"{url}?since=2000-01-01T00:00:00Z", who="manager")
    assert counted.status_code == 200 and counted.json["count"] == 2
    assert sorted(counted.json["webhookIds"]) == sorted(failed)
    assert api("GET", f"{url}?since=soon", who="manager").status_code == 400
    done = api("POST", url, json={"since": "2000-01-01T00:00:00Z"}, who="manager")
    assert done.status_code == 202 and done.json["resent"] == 2 and len(done.json["jobIds"]) == 2
    run_worker()
    assert sorted(request.headers["Webhook-Id"] for request in receiver.received[2:]) == sorted(failed)
