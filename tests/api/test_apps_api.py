"""Everything an owner does for apps in the dashboard, done through the API with a token."""

from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from tests.conftest import Session
from tests.lifecycle import send
from webapp.core.extensions import db
from webapp.models import SentryApp


def test_create_answers_the_app_in_sentrys_shape(api, pager_api, receiver):
    assert pager_api["slug"] == "pager" and pager_api["status"] == "internal" and pager_api["isInternal"] is True
    assert pager_api["isDisabled"] is False and pager_api["webhookEvents"] == [
        "issue.created", "issue.resolved", "issue.ignored", "issue.unresolved", "issue.assigned"]
    assert pager_api["events"] == ["issue"] and pager_api["webhookUrl"] == receiver.url("/hook")
    assert len(pager_api["clientSecret"]) == 64 and len(pager_api["uuid"]) == 36
    assert pager_api["owner"]["slug"] == "acme" and pager_api["installation"]["uuid"]
    listed = api("GET", "/api/0/organizations/acme/sentry-apps/")
    assert [a["slug"] for a in listed.json] == ["pager"]
    assert 'rel="next"; results="false"' in listed.headers["Link"]


def test_api_and_dashboard_show_the_same_app(app, api, pager_api):
    session = Session(app.test_client())
    session.login()
    page = session.get("/orgs/acme/apps/pager").get_data(as_text=True)
    for value in (pager_api["uuid"], pager_api["installation"]["uuid"], pager_api["webhookUrl"]):
        assert value in page


@pytest.mark.parametrize(("body", "detail"), [
    ({"organization": "acme", "webhookUrl": "https://93.184.216.34/"}, "name: this field is required."),
    ({"name": 5, "organization": "acme", "webhookUrl": "https://93.184.216.34/"}, "name: expected a string."),
    ({"name": "X", "organization": "acme", "webhookUrl": "ftp://x/"}, "webhookUrl: The URL must start with http"),
    ({"name": "X", "organization": "acme", "webhookUrl": "https://93.184.216.34/", "events": "issue"}, "events: expected a list."),
    ({"name": "X", "organization": "acme", "webhookUrl": "https://93.184.216.34/", "events": ["alert"]}, "events: each must be one of"),
    ({"name": "X", "organization": "acme", "webhookUrl": "https://93.184.216.34/", "isInternal": False}, "isInternal"),
    ({"name": "X", "organization": "acme", "webhookUrl": "https://93.184.216.34/", "isInternal": "yes"}, "isInternal: expected true or false."),
    ({"name": "Pager", "organization": "acme", "webhookUrl": "https://93.184.216.34/"}, "already has an app named"),
])
def test_bad_input_is_400_naming_the_field_and_creates_nothing(app, api, pager_api, body, detail):
    response = api("POST", "/api/0/sentry-apps/", json=body)
    assert response.status_code == 400 and detail in response.json["detail"], response.json
    with app.app_context():
        assert db.session.query(SentryApp).count() == 1


def test_not_json_is_400(api, pager_api):
    response = api("PUT", "/api/0/sentry-apps/pager/", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "JSON object" in response.json["detail"]
    response = api.client.put("/api/0/sentry-apps/pager/", data="{oops", content_type="application/json",
                              headers={"Authorization": f"Bearer {api.tokens['owner']}"})
    assert response.status_code == 400


def test_update_and_ssrf_guard(app, api, pager_api):
    response = api("PUT", "/api/0/sentry-apps/pager/", json={"name": "Pager v2", "events": ["issue", "comment"]})
    assert response.status_code == 200 and response.json["name"] == "Pager v2" and response.json["events"] == ["issue", "comment"]
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    response = api("PUT", "/api/0/sentry-apps/pager/", json={"webhookUrl": "http://169.254.169.254/latest"})
    assert response.status_code == 400 and response.json["detail"].startswith("webhookUrl:")
    assert api("GET", "/api/0/sentry-apps/pager/").json["webhookUrl"] == pager_api["webhookUrl"]


def test_put_events_on_a_disabled_app_reenables_it(app, api, pager_api, receiver, run_worker):
    receiver.answer(410)
    send(app, 1)
    run_worker()
    assert api("GET", "/api/0/sentry-apps/pager/").json["isDisabled"] is True
    response = api("PUT", "/api/0/sentry-apps/pager/", json={"events": ["issue"]})
    assert response.json["isDisabled"] is False and response.json["disabledReason"] is None


def test_enable_with_replay_and_conflict_when_enabled(app, api, pager_api, receiver, run_worker):
    assert api("POST", "/api/0/sentry-apps/pager/enable/").status_code == 409
    receiver.answer(410)
    send(app, 1)
    run_worker()
    send(app, 1, 2)
    run_worker()
    app_json = api("GET", "/api/0/sentry-apps/pager/").json
    # The two it missed and the one that disabled it are kept.
    assert app_json["isDisabled"] is True and "410" in app_json["disabledReason"] and app_json["missedDeliveries"] == 3
    assert api("POST", "/api/0/sentry-apps/pager/enable/", json={"replay": "yes"}).status_code == 400
    receiver.answer(200)
    response = api("POST", "/api/0/sentry-apps/pager/enable/", json={"replay": True})
    assert response.status_code == 200 and response.json["replayed"] == 3 and response.json["isDisabled"] is False
    run_worker()
    assert len(receiver.received) == 4


def test_webhook_requests_filters_and_error_details(app, api, pager_api, receiver, run_worker):
    receiver.answer(500, "kaput")
    send(app, 1)
    run_worker()
    receiver.answer(200)
    send(app, 1, event_type="issue.resolved")
    run_worker()
    entries = api("GET", "/api/0/sentry-apps/pager/webhook-requests/").json
    assert [e["eventType"] for e in entries] == ["issue.resolved", "issue.created"]
    error = entries[1]
    assert error["responseCode"] == 500 and error["responseBody"] == "kaput" and "Sentry-Hook-Signature" in error["requestHeaders"]
    assert error["sentryAppSlug"] == "pager" and error["organization"] == {"name": "Acme", "slug": "acme"}
    assert "responseBody" not in entries[0]
    as_member = api("GET", "/api/0/sentry-apps/pager/webhook-requests/", who="member").json
    assert as_member[1]["responseCode"] == 500 and "responseBody" not in as_member[1]  # owners and managers only
    assert "requestBody" not in as_member[1] and "requestHeaders" not in as_member[1]
    assert api("GET", "/api/0/sentry-apps/pager/webhook-requests/", who="manager").json[1]["responseBody"] == "kaput"
    only_errors = api("GET", "/api/0/sentry-apps/pager/webhook-requests/?errorsOnly=true").json
    assert [e["responseCode"] for e in only_errors] == [500]
    resolved = api("GET", "/api/0/sentry-apps/pager/webhook-requests/?eventType=issue.resolved").json
    assert [e["eventType"] for e in resolved] == ["issue.resolved"]
    assert api("GET", "/api/0/sentry-apps/pager/webhook-requests/?eventType=nope").status_code == 400
    assert api("GET", "/api/0/sentry-apps/pager/webhook-requests/?errorsOnly=maybe").status_code == 400


def test_test_alert_answers_at_once_and_its_outcome_is_read_where_location_says(app, api, pager_api, receiver,
                                                                                 run_worker):
    """No request waits for a receiver: 202 at once, then the outcome at ``Location`` once a worker sent it."""
    receiver.answer(200, '{"pong": true}')
    queued = api("POST", "/api/0/sentry-apps/pager/test-alert/")
    assert queued.status_code == 202 and queued.json["outcome"] == "queued" and queued.json["jobId"]
    location = queued.headers["Location"]
    assert location == queued.json["resultUrl"] == f"/api/0/sentry-apps/pager/test-alert/{queued.json['jobId']}/"
    assert receiver.received == []  # nothing was sent from the request itself
    waiting = api("GET", location)
    assert waiting.status_code == 202 and waiting.json["outcome"] == "queued"
    assert waiting.headers["Retry-After"] == "1"

    run_worker()
    done = api("GET", location)
    assert done.status_code == 200, done.json
    assert done.json["outcome"] == "success" and done.json["responseCode"] == 200 and done.json["failure"] is None
    assert done.json["excerpt"] == '{"pong": true}'
    assert receiver.received[0].sentry_signature_ok
    assert api("GET", "/api/0/sentry-apps/pager/test-alert/not-a-job/").status_code == 404


def test_test_alert_to_a_refused_address_says_refused_not_timeout(app, api, pager_api, run_worker):
    import socket

    with socket.socket() as probe:  # a loopback port nothing listens on: the connection is refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert api("PUT", "/api/0/sentry-apps/pager/", json={"webhookUrl": f"http://127.0.0.1:{port}/hook"}).status_code == 200
    location = api("POST", "/api/0/sentry-apps/pager/test-alert/").headers["Location"]
    run_worker()
    result = api("GET", location).json
    assert result["outcome"] == "error" and result["responseCode"] == 0
    assert result["failure"]["kind"] == "refused"


def test_rotate_secret_and_health(app, api, pager_api, receiver, run_worker):
    response = api("POST", "/api/0/sentry-apps/pager/rotate-secret/")
    assert response.status_code == 200 and response.json["clientSecret"] != pager_api["clientSecret"]
    assert api("GET", "/api/0/sentry-apps/pager/").json["clientSecret"] == response.json["clientSecret"]
    receiver.answer(200)
    send(app, 1, 2)
    run_worker()
    days = api("GET", "/api/0/sentry-apps/pager/health/?days=3").json
    assert len(days) == 3 and days[-1]["successCount"] == 2 and days[0]["successCount"] == 0
    for bad in ("0", "31", "x", "-1"):
        assert api("GET", f"/api/0/sentry-apps/pager/health/?days={bad}").status_code == 400


def test_delete_removes_the_app_and_its_log(app, api, pager_api, receiver, run_worker):
    receiver.answer(200)
    send(app, 1)
    run_worker()
    assert api("DELETE", "/api/0/sentry-apps/pager/").status_code == 204
    assert api("GET", "/api/0/sentry-apps/pager/").status_code == 404
    assert not any(key.startswith(b"hookline:webhook-requests:1:") for key in app.extensions["redis"].keys("*"))
    events = [row["event"] for row in api("GET", "/api/0/organizations/acme/audit-logs/").json["rows"]]
    assert events[:2] == ["app.remove", "app.create"]


def test_audit_logs_in_sentrys_shape(api, pager_api):
    api("POST", "/api/0/sentry-apps/pager/rotate-secret/")
    body = api("GET", "/api/0/organizations/acme/audit-logs/").json
    assert set(body) == {"rows", "options"}
    newest = body["rows"][0]
    assert newest["event"] == "app.rotate-secret" and newest["actor"]["email"] == "owner@example.com"
    assert "app.create" in body["options"]


def test_paging_with_link_headers(api, receiver):
    for i in range(101):
        assert api("POST", "/api/0/sentry-apps/", json={"name": f"App {i:03}", "organization": "acme",
                                                        "webhookUrl": receiver.url("/hook")}).status_code == 201
    first = api("GET", "/api/0/organizations/acme/sentry-apps/")
    assert len(first.json) == 100 and 'rel="next"; results="true"; cursor="0:100:0"' in first.headers["Link"]
    second = api("GET", "/api/0/organizations/acme/sentry-apps/?cursor=0:100:0")
    assert [a["name"] for a in second.json] == ["App 100"]
    assert 'rel="next"; results="false"' in second.headers["Link"]
    assert api("GET", "/api/0/organizations/acme/sentry-apps/?cursor=bogus").status_code == 400


def test_put_events_re_enables_but_keeps_what_was_missed_for_a_replay(app, api, pager_api, receiver, run_worker):
    receiver.answer(410)
    send(app, 1)
    run_worker()
    send(app, 1, 2)
    run_worker()
    assert api("PUT", "/api/0/sentry-apps/pager/", json={"events": ["issue"]}).json["missedDeliveries"] == 3
    api("PUT", "/api/0/sentry-apps/pager/", json={"events": []})
    receiver.answer(410)
    send(app, 1)
    run_worker()  # broken again: disabled again, the three kept deliveries still there, and the one that disabled it
    receiver.answer(200)
    response = api("POST", "/api/0/sentry-apps/pager/enable/", json={"replay": True})
    assert response.json["replayed"] == 4


def test_delete_takes_the_app_out_of_alert_rules(app, world, api, pager_api):
    from webapp.alerts.alert_rules import save_issue_rule
    from webapp.models import IssueAlertRule, Project

    with app.app_context():
        project = db.session.get(Project, world.project_id)
        pager_id = db.session.query(SentryApp).filter_by(slug="pager").one().id
        save_issue_rule(project, {"name": "r", "trigger": "every_event", "frequency_minutes": "5"},
                        [{"sentry_app_id": pager_id, "settings": []}, {"sentry_app_id": world.bare_id, "settings": []}])
    assert api("DELETE", "/api/0/sentry-apps/pager/").status_code == 204
    with app.app_context():
        assert db.session.query(IssueAlertRule).one().actions == [{"sentry_app_id": world.bare_id, "settings": []}]


def test_answers_carrying_the_client_secret_are_not_stored_by_caches(api, receiver):
    created = api("POST", "/api/0/sentry-apps/", json={
        "name": "Pager", "organization": "acme", "webhookUrl": receiver.url("/hook"), "isInternal": True})
    shown = api("GET", "/api/0/sentry-apps/pager/")
    rotated = api("POST", "/api/0/sentry-apps/pager/rotate-secret/")
    for response in (created, shown, rotated):
        assert response.status_code < 300 and "clientSecret" in response.json
        assert response.headers["Cache-Control"] == "no-store"


def test_an_app_name_with_a_line_break_is_refused_by_the_api_and_on_edit(app, api, pager_api):
    response = api("POST", "/api/0/sentry-apps/", json={
        "name": "Pager\r\nBcc: eve@evil.example", "organization": "acme", "webhookUrl": "https://93.184.216.34/"})
    assert response.status_code == 400  # the request-edge check names the field and the character
    assert response.json["detail"] == "name: a line break (U+000D) is not allowed here. Nothing was saved."
    response = api("PUT", "/api/0/sentry-apps/pager/", json={"name": "Pager\n2"})
    assert response.status_code == 400
    assert response.json["detail"] == "name: a line break (U+000A) is not allowed here. Nothing was saved."
    with app.app_context():
        assert [a.name for a in db.session.scalars(select(SentryApp))] == ["Pager"]


def test_a_url_at_hookline_itself_is_400_naming_the_field(app, api, pager_api, receiver):
    app.config["BASE_URL"] = "http://localhost:5999"
    body = {"name": "Loop", "organization": "acme", "webhookUrl": "http://localhost:5999/api/1/envelope/"}
    response = api("POST", "/api/0/sentry-apps/", json=body)
    assert response.status_code == 400
    assert response.json["detail"] == ("webhookUrl: This URL points at Hookline itself (localhost:5999 is Hookline's "
                                       "BASE_URL); deliveries to it would come back as events and loop. Use your "
                                       "receiver's URL.")
    response = api("PUT", "/api/0/sentry-apps/pager/", json={"webhookUrl": "http://localhost:5999/"})
    assert response.status_code == 400 and response.json["detail"].startswith("webhookUrl: This URL points at Hookline")
    assert api("GET", "/api/0/sentry-apps/pager/").json["webhookUrl"] == pager_api["webhookUrl"]
    other_port = f"http://localhost:{urlsplit(receiver.url('/')).port}/hook"
    assert api("POST", "/api/0/sentry-apps/", json={**body, "webhookUrl": other_port}).status_code == 201
    with app.app_context():
        assert db.session.query(SentryApp).count() == 2


def test_an_app_saved_before_the_check_can_still_be_renamed(app, api, pager_api, receiver):
    """Only a new or changed URL is checked: BASE_URL moving onto an app's receiver does not lock the app."""
    app.config["BASE_URL"] = receiver.url("").rstrip("/")
    response = api("PUT", "/api/0/sentry-apps/pager/", json={"name": "Pager v2"})
    assert response.status_code == 200 and response.json["name"] == "Pager v2"


def test_a_host_that_does_not_resolve_is_created_with_a_warning_header(api):
    response = api("POST", "/api/0/sentry-apps/", json={"name": "Offline", "organization": "acme",
                                                        "webhookUrl": "https://offline.invalid/hook", "events": []})
    assert response.status_code == 201 and response.json["webhookUrl"] == "https://offline.invalid/hook"
    assert response.headers["Warning"].startswith('299 hookline "The host offline.invalid does not resolve')
    resolvable = api("PUT", "/api/0/sentry-apps/offline/", json={"webhookUrl": "https://93.184.216.34/hook"})
    assert resolvable.status_code == 200 and "Warning" not in resolvable.headers
