"""Send test alert → RQ worker → a real receiver that checks signatures → result and request log on the page."""

import re
import time

import pytest
from rq.job import Job
from sqlalchemy import select

from webapp.core.extensions import db
from webapp.models import SentryApp

PAGE = "/orgs/acme/apps/receiver"


@pytest.fixture
def registered(app, owner, receiver):
    """An app of org acme whose webhook is the receiver; returns the app's (secret, installation uuid, id)."""
    response = owner.post("/orgs/acme/apps/new", {"name": "Receiver", "webhook_url": receiver.url(), "issue": "y"})
    assert response.status_code == 302
    with app.app_context():
        sentry_app = db.session.scalar(select(SentryApp))
        receiver.secret = sentry_app.client_secret
        return sentry_app.client_secret, sentry_app.installation.uuid, sentry_app.id


def press_send_test_alert(owner):
    """Do what the button does with htmx; return the URL the pending fragment polls."""
    fragment = owner.post(f"{PAGE}/test-alert", htmx=True).get_data(as_text=True)
    assert "waiting for the worker" in fragment
    return re.search(r'hx-get="([^"]+)"', fragment).group(1)


def test_test_alert_is_signed_delivered_and_shown_in_place(owner, receiver, registered, run_worker):
    secret, installation_uuid, app_id = registered
    receiver.respond(200, '{"thanks": true}')
    poll_url = press_send_test_alert(owner)
    pending = owner.get(poll_url)
    assert pending.status_code == 200 and "waiting for the worker" in pending.get_data(as_text=True)

    run_worker()

    [received] = receiver.received
    assert received.sentry_signature_ok and received.standard_webhooks_ok
    headers = received.headers
    assert headers["Sentry-Hook-Resource"] == "event_alert"
    assert headers["Content-Type"] == "application/json"
    assert abs(int(headers["Sentry-Hook-Timestamp"]) - time.time()) < 60
    assert re.fullmatch(r"[0-9a-f]{32}", headers["Request-Id"])
    assert headers["Webhook-Id"].startswith("msg_") and headers["Webhook-Timestamp"] == headers["Sentry-Hook-Timestamp"]
    payload = received.json
    assert payload["action"] == "triggered"
    assert payload["installation"] == {"uuid": installation_uuid}
    assert payload["actor"] == {"type": "application", "id": "sentry", "name": "Sentry"}
    data = payload["data"]
    assert data["triggered_rule"] == "Test Alert"
    assert data["issue_alert"] == {"id": -1, "title": "Test Alert", "sentry_app_id": app_id, "settings": []}
    event = data["event"]
    assert event["issue_id"] == "-1" and event["level"] == "error"
    for name in ("url", "web_url", "issue_url"):
        assert event[name] == "http://hookline.test/orgs/acme/apps/receiver"

    done = owner.get(poll_url)
    assert done.status_code == 286  # htmx: stop polling
    result = done.get_data(as_text=True)
    assert "HTTP 200" in result and "{&#34;thanks&#34;: true}" in result and " ms" in result

    page = owner.get(PAGE).get_data(as_text=True)
    row = re.search(r'<tr class="log-row row-ok".*?</tr>', page, re.S).group(0)
    assert "event_alert.triggered" in row and ">200<" in row and receiver.url() in row and "(test)" in row


def open_newest_row(owner, page_url=PAGE):
    """Open the newest row's inspector as the "Details" link does with htmx; return the fragment."""
    page = owner.get(page_url).get_data(as_text=True)
    inspect_url = re.search(r'class="inspect-link".*?hx-get="([^"]+)"', page, re.S).group(1)
    response = owner.get(inspect_url, headers={"HX-Request": "true"})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_error_bodies_are_shown_escaped(owner, receiver, registered, run_worker):
    receiver.respond(500, "<script>alert('pwned')</script> upstream broke", content_type="text/html")
    poll_url = press_send_test_alert(owner)
    run_worker()
    result = owner.get(poll_url).get_data(as_text=True)
    assert "HTTP 500" in result
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; upstream broke" in result
    assert "<script>alert" not in result
    page = owner.get(f"{PAGE}?errors_only=1").get_data(as_text=True)
    assert "row-error" in page and ">500<" in page
    inspector = open_newest_row(owner, f"{PAGE}?errors_only=1")
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; upstream broke" in inspector
    assert "<script>alert" not in inspector
    assert "Sentry-Hook-Signature" in inspector  # the request headers are there to read


def test_4xx_body_is_in_the_log(owner, receiver, registered, run_worker):
    receiver.respond(401, '{"detail": "bad signature, expected another secret"}')
    press_send_test_alert(owner)
    run_worker()
    assert ">401<" in owner.get(PAGE).get_data(as_text=True)
    assert "bad signature, expected another secret" in open_newest_row(owner)


def test_timeout_is_code_0_shown_as_timeout(app, owner, receiver, registered, run_worker):
    app.config["WEBHOOK_TIMEOUT"] = 0.3
    receiver.respond(200, delay=1.0)
    poll_url = press_send_test_alert(owner)
    run_worker()
    result = owner.get(poll_url).get_data(as_text=True)
    assert "Timed out after 0.3 s" in result and "Answer within 0.3 s" in result
    page = owner.get(PAGE).get_data(as_text=True)
    assert ">timeout<" in page and "Timed out after 0.3 s" in page


def test_redirects_are_not_followed(owner, receiver, registered, run_worker, httpserver):
    receiver.respond(302, "", headers={"Location": receiver.url("/elsewhere")})
    httpserver.expect_request("/elsewhere").respond_with_data("followed!")
    press_send_test_alert(owner)
    run_worker()
    assert [request.path for request, _ in httpserver.log] == ["/hook"]
    assert ">302<" in owner.get(f"{PAGE}?errors_only=1").get_data(as_text=True)


def test_private_destination_is_blocked_at_connect_time(app, owner, receiver, registered, run_worker, httpserver):
    """A URL that was allowed when registered is checked again when the worker connects."""
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    receiver.respond(200)
    press_send_test_alert(owner)
    run_worker()
    assert receiver.received == []
    page = owner.get(PAGE).get_data(as_text=True)
    assert ">blocked<" in page and "Blocked destination:" in page and "which webhooks may not reach" in page


def test_without_javascript_the_button_queues_and_redirects(owner, receiver, registered, run_worker):
    receiver.respond(200)
    response = owner.post(f"{PAGE}/test-alert")
    assert response.status_code == 302 and response.headers["Location"] == PAGE
    assert "Test alert queued" in owner.get(PAGE).get_data(as_text=True)
    run_worker()
    assert len(receiver.received) == 1
    assert "event_alert.triggered" in owner.get(PAGE).get_data(as_text=True)


def test_log_filters_and_poller(owner, receiver, registered, run_worker):
    receiver.respond(200)
    press_send_test_alert(owner)
    run_worker()
    assert "row-ok" in owner.get(f"{PAGE}?event_type=event_alert.triggered").get_data(as_text=True)
    assert "row-ok" not in owner.get(f"{PAGE}?event_type=issue.created").get_data(as_text=True)
    assert "row-ok" not in owner.get(f"{PAGE}?errors_only=1").get_data(as_text=True)
    assert owner.get(f"{PAGE}?event_type=nonsense").status_code == 400

    # The poller on the page asks for rows newer than the newest one shown.
    page = owner.get(PAGE).get_data(as_text=True)
    poll_url = re.search(r'id="log-poller"[^>]*hx-get="([^"]+)"', page, re.S).group(1).replace("&amp;", "&")
    assert owner.get(poll_url).status_code == 204  # nothing new yet
    press_send_test_alert(owner)
    run_worker()
    fragment = owner.get(poll_url)
    assert fragment.status_code == 200 and "HX-Request" in fragment.headers["Vary"]
    rows = fragment.get_data(as_text=True)
    assert rows.count('class="log-row') == 1 and 'id="log-poller"' in rows and "<html" not in rows


def test_result_of_another_apps_job_is_a_404(app, owner, receiver, registered):
    poll_url = press_send_test_alert(owner)
    owner.post("/orgs/acme/apps/new", {"name": "Second", "webhook_url": receiver.url()})
    assert owner.get(poll_url.replace("/receiver/", "/second/")).status_code == 404
    assert owner.get(f"{PAGE}/test-alert/not-a-job").status_code == 404


def test_deleted_app_job_reports_it(app, owner, receiver, registered, run_worker):
    poll_url = press_send_test_alert(owner)
    with app.app_context():
        db.session.delete(db.session.scalar(select(SentryApp)))
        db.session.commit()
    run_worker()
    assert receiver.received == []
    job_id = poll_url.rsplit("/", 1)[1]
    with app.app_context():
        job = Job.fetch(job_id, connection=app.extensions["redis"])
        assert job.return_value()["outcome"] == "missing"
