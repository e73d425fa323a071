"""The request log as a delivery inspector: every row opens, signatures never kept, filters, resend."""

import json
import re

import pytest

from tests.conftest import Session
from tests.lifecycle import health_today, load_app, log_entries, send
from webapp.core.extensions import db
from webapp.models import SentryApp

PAGE = "/orgs/acme/apps/pager"
MASK = "••••"


def login(app, email):
    session = Session(app.test_client())
    session.login(email)
    return session


@pytest.fixture
def owner_session(app, pager):
    return login(app, "owner@example.com")


@pytest.fixture
def delivered(app, pager, receiver, run_worker):
    """One issue.created delivered to a receiver that answers 200; returns (what arrived, its log entry)."""
    receiver.answer(200, '{"stored": "yes"}', headers={"X-Receiver-Trace": "trace-42"})
    send(app, pager)
    run_worker()
    [received] = receiver.received
    [entry] = log_entries(app, pager)
    return received, entry


def inspect(session, request_id):
    response = session.get(f"{PAGE}/requests/{request_id}", headers={"HX-Request": "true"})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def rows(page: str) -> list[str]:
    return re.findall(r'<tr class="log-row.*?</tr>', page, re.S)


def test_a_success_row_opens_to_its_request_and_response(owner_session, delivered):
    received, entry = delivered
    assert entry["response_code"] == 200
    page = owner_session.get(PAGE).get_data(as_text=True)
    [row] = rows(page)
    assert f'hx-get="{PAGE}/requests/{entry["request_id"]}"' in row and ">Details<" in row

    panel = inspect(owner_session, entry["request_id"])
    assert '<tr class="inspector"' in panel and '<td colspan="7">' in panel
    assert "<html" not in panel
    headers = received.headers
    # The ids, each with a copy button; the attempt out of how many; the duration.
    for value in (headers["Webhook-Id"], headers["Request-Id"]):
        assert f"<code class=\"{'webhook-id' if value.startswith('msg_') else 'request-id'}\">{value}</code>" in panel
        assert f'data-copy="{value}"' in panel
    assert "1 of 7" in panel and f"{entry['duration_ms']} ms" in panel
    # The request headers as sent, but no signature (not even an owner sees one), the body pretty-printed and escaped.
    assert headers["Sentry-Hook-Signature"] not in panel and headers["Webhook-Signature"] not in panel
    assert "Sentry-Hook-Signature" in panel and "v1,••••" in panel
    pretty = json.dumps(json.loads(received.body), indent=2)
    assert pretty.replace('"', "&#34;") in panel
    # The response: status, headers and body.
    assert "HTTP 200" in panel and "X-Receiver-Trace" in panel and "trace-42" in panel
    assert "{&#34;stored&#34;: &#34;yes&#34;}" in panel
    assert ">Resend</button>" in panel


def test_no_one_sees_a_signature_value_and_members_cannot_resend(app, delivered):
    received, entry = delivered
    for email, can_resend in (("member@example.com", False), ("manager@example.com", True)):
        panel = inspect(login(app, email), entry["request_id"])
        for header in ("Sentry-Hook-Signature", "Webhook-Signature"):
            assert received.headers[header] not in panel
        assert received.headers["Webhook-Id"] in panel  # the delivery's ids, shown to everyone
        assert (">Resend</button>" in panel) == can_resend


def test_members_see_header_names_but_no_values_and_no_bodies(app, delivered):
    received, entry = delivered
    pretty = json.dumps(json.loads(received.body), indent=2).replace('"', "&#34;")
    member = inspect(login(app, "member@example.com"), entry["request_id"])
    assert "Sentry-Hook-Signature" in member and "X-Receiver-Trace" in member  # which headers went and came back
    assert MASK not in member and "trace-42" not in member  # ... but not their values
    assert pretty not in member and "&#34;stored&#34;" not in member  # nor the request and response bodies
    assert "Owners and managers see the header values and the bodies." in member
    manager = inspect(login(app, "manager@example.com"), entry["request_id"])
    assert manager.count(MASK) == 2 and "trace-42" in manager and pretty in manager


def stored_values(redis) -> bytes:
    """Return every value Redis holds (strings, lists, hashes, sets), raw, as one byte string."""
    values = []
    for key in redis.keys("*"):
        kind = redis.type(key)
        if kind == b"string":
            values.append(redis.get(key))
        elif kind == b"list":
            values += redis.lrange(key, 0, -1)
        elif kind == b"hash":
            values += [part for pair in redis.hgetall(key).items() for part in pair]
        elif kind in (b"set", b"zset"):
            values += list(redis.smembers(key)) if kind == b"set" else redis.zrange(key, 0, -1)
    return b"\n".join(values)


def test_no_signature_is_stored_shown_or_served(app, owner_session, delivered):
    received, entry = delivered
    raw = stored_values(app.extensions["redis"])
    assert entry["request_id"].encode() in raw  # the log is there...
    for header in ("Sentry-Hook-Signature", "Webhook-Signature"):  # ...without a valid signature anywhere
        value = received.headers[header]
        assert value.encode() not in raw and value.split(",")[-1].encode() not in raw
        assert value not in owner_session.get(f"{PAGE}?open={entry['request_id']}").get_data(as_text=True)
        assert value not in owner_session.get("/api/0/sentry-apps/pager/webhook-requests/").get_data(as_text=True)


def test_without_javascript_the_link_opens_the_page_with_the_row_open(owner_session, delivered):
    _, entry = delivered
    rid = entry["request_id"]
    response = owner_session.get(f"{PAGE}/requests/{rid}")
    assert response.status_code == 302 and response.headers["Location"] == f"{PAGE}?open={rid}#inspect-{rid}"
    page = owner_session.get(f"{PAGE}?open={rid}").get_data(as_text=True)
    assert page.index(f'id="request-{rid}"') < page.index(f'id="inspect-{rid}"')
    assert 'aria-expanded="true"' in page
    # Its link now closes it, and an unknown or malformed id opens nothing.
    assert f'href="{PAGE}#request-{rid}"' in page
    assert 'class="inspector"' not in owner_session.get(f"{PAGE}?open={'0' * 32}").get_data(as_text=True)
    assert owner_session.get(f"{PAGE}/requests/{'0' * 32}", headers={"HX-Request": "true"}).status_code == 404
    assert owner_session.get(f"{PAGE}/requests/nonsense", headers={"HX-Request": "true"}).status_code == 404


def test_the_limit_is_said_under_the_table(owner_session, delivered):
    assert "Newest 100 requests per event type are kept." in owner_session.get(PAGE).get_data(as_text=True)


def test_status_class_filter_keeps_its_state_in_the_url(app, owner_session, pager, receiver, run_worker):
    for status in (200, 404, 503):
        receiver.answer(status)
        send(app, pager)
        run_worker()
    with app.app_context():  # nothing listens on port 9: refused, an "other error"
        db.session.get(SentryApp, pager).webhook_url = "http://127.0.0.1:9/hook"
        db.session.commit()
    send(app, pager)
    run_worker()

    def statuses(query):
        page = owner_session.get(f"{PAGE}?{query}").get_data(as_text=True)
        return [re.search(r'class="badge[^"]*">([^<]+)<', row).group(1) for row in rows(page)], page

    assert statuses("status=4xx")[0] == ["404"]
    assert statuses("status=5xx")[0] == ["503"]
    assert statuses("status=2xx")[0] == ["200"]
    assert statuses("status=other")[0] == []
    shown, page = statuses("status=timeout&event_type=issue.created")  # "no answer": a refused connection too
    assert shown == ["refused"]
    assert "Connection refused: nothing accepted the connection on 127.0.0.1 port 9." in page
    assert '<option value="timeout" selected>' in page
    poller = re.search(r'id="log-poller"[^>]*hx-get="([^"]+)"', page, re.S).group(1)
    assert "status=timeout" in poller and "event_type=issue.created" in poller
    assert len(statuses("")[0]) == 4
    assert owner_session.get(f"{PAGE}?status=7xx").status_code == 400


def test_resend_from_the_page_sends_the_same_message_again(app, clock, owner_session, delivered, receiver, run_worker):
    received, entry = delivered
    before = health_today(app, 1, clock.now().date())["success_count"]
    response = owner_session.post(f"{PAGE}/requests/{entry['request_id']}/resend", htmx=True)
    assert response.status_code == 200 and "Resend queued" in response.get_data(as_text=True)
    run_worker()
    first, again = receiver.received
    assert again.body == first.body  # the same bytes: same event type, data and actor
    assert again.headers["Webhook-Id"] == first.headers["Webhook-Id"]
    assert again.headers["Request-Id"] != first.headers["Request-Id"]
    assert again.sentry_signature_ok and again.standard_webhooks_ok
    newest = log_entries(app, 1)[0]
    assert newest["resend"] is True and newest["attempt"] == 1 and newest["message_id"] == entry["message_id"]
    assert health_today(app, 1, clock.now().date())["success_count"] == before + 1  # a delivery like any other
    [row, _] = rows(owner_session.get(PAGE).get_data(as_text=True))
    assert "(resend)" in row


def test_resend_without_javascript_redirects_back_to_the_open_row(app, owner_session, delivered, receiver, run_worker):
    _, entry = delivered
    rid = entry["request_id"]
    response = owner_session.post(f"{PAGE}/requests/{rid}/resend")
    assert response.status_code == 302 and response.headers["Location"] == f"{PAGE}?open={rid}#inspect-{rid}"
    assert "Resend queued" in owner_session.get(response.headers["Location"]).get_data(as_text=True)
    run_worker()
    assert len(receiver.received) == 2


def test_resend_permissions_and_missing_requests(app, make_user, delivered, receiver, run_worker):
    _, entry = delivered
    url = f"{PAGE}/requests/{entry['request_id']}/resend"
    assert login(app, "member@example.com").post(url, htmx=True).status_code == 403
    owner = login(app, "owner@example.com")
    assert owner.post(f"{PAGE}/requests/{'0' * 32}/resend").status_code == 404
    assert owner.client.post(url, headers={"HX-Request": "true"}).status_code == 400  # no CSRF token
    make_user("eve@example.com", "evil", "owner")
    eve = login(app, "eve@example.com")
    assert eve.post(url).status_code == 404
    assert eve.get(f"{PAGE}/requests/{entry['request_id']}", headers={"HX-Request": "true"}).status_code == 404
    run_worker()
    assert len(receiver.received) == 1  # nothing was resent


def test_a_disabled_app_refuses_resend_and_says_why(app, owner_session, pager, receiver, run_worker):
    receiver.answer(410)
    send(app, pager)
    run_worker()
    assert load_app(app, pager).status == "disabled"
    [entry] = log_entries(app, pager)
    panel = inspect(owner_session, entry["request_id"])
    assert ">Resend</button>" not in panel and "Pager is disabled, so a resend would only be kept as missed" in panel
    response = owner_session.post(f"{PAGE}/requests/{entry['request_id']}/resend", htmx=True)
    assert response.status_code == 409 and "Re-enable it" in response.get_data(as_text=True)
    run_worker()
    assert len(receiver.received) == 1


def test_a_test_alert_is_resent_as_a_test_alert(app, clock, owner_session, pager, receiver, run_worker):
    receiver.answer(200)
    owner_session.post(f"{PAGE}/test-alert")
    run_worker()
    [entry] = log_entries(app, pager)
    assert entry["test"] is True
    owner_session.post(f"{PAGE}/requests/{entry['request_id']}/resend", htmx=True)
    run_worker()
    first, again = receiver.received
    assert again.body == first.body and again.headers["Webhook-Id"] == first.headers["Webhook-Id"]
    newest = log_entries(app, pager)[0]
    assert (newest["test"], newest["resend"], newest["max_attempts"]) == (True, True, 1)
    assert sum(health_today(app, pager, clock.now().date()).values()) == 0  # not counted, like test alerts
