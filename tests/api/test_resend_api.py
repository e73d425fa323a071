"""Resending a logged delivery through the API, and what the log's API shows of it."""

from tests.lifecycle import log_entries, send
from webapp.core.extensions import db
from webapp.models import SentryApp

MASK = "••••"


def resend_url(request_id: str) -> str:
    return f"/api/0/sentry-apps/pager/webhook-requests/{request_id}/resend/"


def failed_delivery(app, api, receiver, run_worker) -> dict:
    """One issue.created answered 500 (retries not run); return its entry as the API lists it."""
    receiver.answer(500, "kaput")
    send(app, 1)
    run_worker()
    [entry] = api("GET", "/api/0/sentry-apps/pager/webhook-requests/").json
    return entry


def test_resend_queues_the_same_message_and_logs_it_as_resend(app, api, pager_api, receiver, run_worker):
    entry = failed_delivery(app, api, receiver, run_worker)
    receiver.answer(200)
    response = api("POST", resend_url(entry["requestId"]), who="manager")
    assert response.status_code == 202, response.json
    assert response.json["requestId"] == entry["requestId"] and response.json["eventType"] == "issue.created"
    assert response.json["webhookId"] == entry["webhookId"] and response.json["jobId"]
    run_worker()
    first, again = receiver.received
    assert again.body == first.body and again.headers["Webhook-Id"] == first.headers["Webhook-Id"] == entry["webhookId"]
    assert again.sentry_signature_ok and again.standard_webhooks_ok
    listed = api("GET", "/api/0/sentry-apps/pager/webhook-requests/").json
    assert [(e["responseCode"], e["resend"]) for e in listed] == [(200, True), (500, False)]
    assert log_entries(app, 1)[0]["attempt"] == 1


def test_resend_permissions_and_unknown_requests(app, api, pager_api, receiver, run_worker):
    entry = failed_delivery(app, api, receiver, run_worker)
    response = api("POST", resend_url(entry["requestId"]), who="member")
    assert response.status_code == 403 and "owners and managers" in response.json["detail"]
    assert api("POST", resend_url(entry["requestId"]), who="eve").status_code == 404  # another organisation
    assert api("POST", resend_url("0" * 32)).status_code == 404
    assert api("POST", resend_url("not-a-request-id")).status_code == 404
    run_worker()
    assert len(receiver.received) == 1


def test_resend_to_a_disabled_app_is_409_and_sends_nothing(app, api, pager_api, receiver, run_worker):
    entry = failed_delivery(app, api, receiver, run_worker)
    with app.app_context():
        db.session.get(SentryApp, 1).status = "disabled"
        db.session.commit()
    response = api("POST", resend_url(entry["requestId"]))
    assert response.status_code == 409 and "disabled" in response.json["detail"]
    run_worker()
    assert len(receiver.received) == 1


def test_no_one_reads_a_signature_from_the_log(app, api, pager_api, receiver, run_worker):
    failed_delivery(app, api, receiver, run_worker)
    sent = receiver.received[0].headers
    for who in ("owner", "manager"):
        [entry] = api("GET", "/api/0/sentry-apps/pager/webhook-requests/", who=who).json
        assert sent["Sentry-Hook-Signature"] not in entry["requestHeaders"]
        assert sent["Webhook-Signature"] not in entry["requestHeaders"]
        assert entry["requestHeaders"].count(MASK) == 2 and '"webhook-signature": "v1,••••"' in entry["requestHeaders"]
        assert sent["Webhook-Id"] in entry["requestHeaders"]
    member_view = api("GET", "/api/0/sentry-apps/pager/webhook-requests/", who="member").get_data(as_text=True)
    assert sent["Sentry-Hook-Signature"] not in member_view and "requestHeaders" not in member_view


def test_a_failure_is_explained_in_the_list(app, api, pager_api, run_worker):
    api("PUT", "/api/0/sentry-apps/pager/", json={"webhookUrl": "http://127.0.0.1:9/hook"})
    send(app, 1)
    run_worker()
    [entry] = api("GET", "/api/0/sentry-apps/pager/webhook-requests/").json
    assert entry["responseCode"] == 0
    assert entry["failure"] == {
        "kind": "refused", "message": "Connection refused: nothing accepted the connection on 127.0.0.1 port 9.",
        "hint": "Is the receiver running and listening on port 9?"}
    assert entry["responseBody"] == entry["failure"]["message"]
