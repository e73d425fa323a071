"""The request log read as messages: one webhook-id each, its attempts under it, its state in words, and search."""

import html
import re
from datetime import timezone

import pytest
from rq.registry import ScheduledJobRegistry

from tests.conftest import Session
from tests.lifecycle import log_entries, send
from webapp.core import keys
from webapp.dispatch.delivery import enqueue_delivery_jobs
from webapp.dispatch.signing import new_message_id

PAGE = "/orgs/acme/apps/pager"
EVENT_ID = "0f3c6d1e9a8b4c2d8e7f6a5b4c3d2e1f"


@pytest.fixture
def owner_session(app, pager):
    session = Session(app.test_client())
    session.login("owner@example.com")
    return session


def text_of(fragment: str) -> str:
    """What a person reads: tags dropped, entities decoded, white space folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", fragment)).split())


def messages_on(page: str) -> list[dict]:
    """Each message of the log as shown: webhook-id, state badge, its sentence, and its attempts' statuses."""
    shown = []
    for body in re.findall(r'<tbody class="message .*?</tbody>', page, re.S):
        head = re.search(r'<tr class="message-row">(.*?)</tr>', body, re.S).group(1)
        webhook_id = re.search(r'<code class="webhook-id">([^<]+)</code>', head)
        shown.append({
            "webhook_id": webhook_id.group(1) if webhook_id else None,
            "state": text_of(re.search(r'<span class="badge state-[^"]+">(.*?)</span>', head).group(1)),
            "says": text_of(re.search(r'<p class="message-state">(.*?)</p>', head, re.S).group(1)),
            "attempts": [text_of(status) for status in re.findall(
                r'<tr class="log-row.*?data-label="Status"><span[^>]*>([^<]+)<', body, re.S)],
            "html": body,
        })
    return shown


def log_page(session, query: str = "") -> str:
    response = session.get(f"{PAGE}?{query}" if query else PAGE)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_two_messages_with_several_attempts_read_as_two_messages(app, owner_session, pager, receiver, run_worker,
                                                                  run_scheduled):
    receiver.answer(503)
    first, second = send(app, pager, 2)
    run_worker()  # attempt 1 of each: 503, a retry scheduled
    run_scheduled()
    run_worker()  # attempt 2 of each: 503 again
    receiver.answer(200)
    run_scheduled()
    run_worker()  # attempt 3 of each: delivered
    assert len(log_entries(app, pager)) == 6

    shown = messages_on(log_page(owner_session))
    assert sorted(message["webhook_id"] for message in shown) == sorted([first, second])
    for message in shown:
        assert message["state"] == "delivered"
        assert message["attempts"] == ["200", "503", "503"]  # newest first, under their message
        assert message["says"].startswith("Delivered ") and message["says"].endswith("on attempt 3 of 7.")
        assert "3 attempts" in text_of(message["html"])


def test_a_retrying_message_says_when_its_next_attempt_is_due(app, owner_session, pager, receiver, run_worker):
    receiver.answer(503)
    [message_id] = send(app, pager)
    run_worker()
    registry = ScheduledJobRegistry(keys.RETRY_QUEUE, connection=app.extensions["redis"])
    due = registry.get_scheduled_time(f"{message_id}-attempt-2").astimezone(timezone.utc)

    [message] = messages_on(log_page(owner_session))
    assert message["state"] == "retrying"
    assert message["says"] == f"Retrying: attempt 1 of 7 failed (503); next attempt at {due:%Y-%m-%d %H:%M:%S} UTC."


def test_a_message_cut_off_by_a_disable_is_kept_then_replayed_and_linked(app, owner_session, pager, receiver,
                                                                         run_worker, run_scheduled):
    receiver.answer(503)
    [message_id] = send(app, pager)
    run_worker()  # attempt 1 failed; attempt 2 waits
    response = owner_session.post(f"{PAGE}/disable", data={"confirm": "1", "reason": "Receiver being moved"})
    assert response.status_code == 303
    run_scheduled()
    run_worker()  # attempt 2 finds the app disabled: the message is kept
    [while_disabled] = send(app, pager)  # never attempted: kept at once
    run_worker()

    shown = {message["webhook_id"]: message for message in messages_on(log_page(owner_session))}
    cut_off, never_sent = shown[message_id], shown[while_disabled]
    assert cut_off["state"] == "missed while disabled" and cut_off["attempts"] == ["503"]
    assert cut_off["says"].startswith("Missed while disabled: kept since ")
    assert cut_off["says"].endswith("and sent when the app is re-enabled with replay.")
    assert never_sent["state"] == "missed while disabled" and never_sent["attempts"] == []

    receiver.answer(200)
    owner_session.post(f"{PAGE}/enable", data={"replay": "1"})
    run_worker()
    replay = next(entry for entry in log_entries(app, pager)
                  if entry["message_id"] == message_id and entry.get("replay"))
    rid = replay["request_id"]
    shown = {message["webhook_id"]: message for message in messages_on(log_page(owner_session))}
    replayed = shown[message_id]
    assert replayed["state"] == "delivered" and replayed["attempts"] == ["200", "503"]
    assert "on replay." in replayed["says"]
    assert re.search(rf"Missed while disabled, kept; replayed .* UTC as Request-ID {rid[:12]}… \(same webhook-id\)\.",
                     replayed["says"])
    assert f'href="{PAGE}?open={rid}#inspect-{rid}"' in replayed["html"]  # the link opens the replay's attempt
    assert shown[while_disabled]["state"] == "delivered"


def test_search_by_webhook_id_request_id_or_event_id(app, owner_session, pager, receiver, run_worker):
    receiver.answer(200)
    issue_one, issue_two = send(app, pager, 2)
    with app.app_context():  # an event alert whose body is long enough to be kept compressed
        alert = new_message_id()
        event = {"event_id": EVENT_ID, "title": "ZeroDivisionError", "culprit": "x" * 5000}
        enqueue_delivery_jobs([(pager, "event_alert.triggered", {"event": event, "triggered_rule": "All"}, None,
                                alert)])
    run_worker()
    request_id = next(entry["request_id"] for entry in log_entries(app, pager) if entry["message_id"] == issue_two)

    def found(query):
        return [message["webhook_id"] for message in messages_on(log_page(owner_session, query))]

    assert sorted(found("")) == sorted([issue_one, issue_two, alert])
    assert found(f"q={issue_one}") == [issue_one]
    assert found(f"q=+{request_id}+") == [issue_two]
    assert found(f"q={EVENT_ID}") == [alert]
    assert found(f"q={EVENT_ID}&event_type=issue.created") == []  # the filters still apply

    page = log_page(owner_session, f"q={'0' * 32}")
    assert messages_on(page) == []
    assert f"No message matches \u201c{'0' * 32}\u201d: search takes a whole webhook-id, Request-ID or event id." \
        in text_of(page)
    page = log_page(owner_session, f"q={issue_one}&status=5xx")
    assert f"No message matches \u201c{issue_one}\u201d with these filters" in text_of(page)
    assert f'value="{issue_one}"' in page  # the search stays in its box
    poller = re.search(r'id="log-poller"[^>]*hx-get="([^"]+)"', page, re.S).group(1)
    assert f"q={issue_one}" in poller and "status=5xx" in poller


def test_the_poller_brings_a_message_whole_when_it_has_a_new_attempt(app, owner_session, pager, receiver,
                                                                      run_worker, run_scheduled):
    receiver.answer(503)
    [message_id] = send(app, pager)
    run_worker()
    page = log_page(owner_session)
    after = re.search(r'id="log-poller"[^>]*hx-get="[^"]*after=([^&"]+)', page, re.S).group(1)
    rows_url = f"{PAGE}/requests?after={after}"
    assert owner_session.get(rows_url, headers={"HX-Request": "true"}).status_code == 204  # nothing new

    receiver.answer(200)
    run_scheduled()
    run_worker()
    response = owner_session.get(rows_url, headers={"HX-Request": "true"})
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    fragment = response.get_data(as_text=True)
    assert fragment.lstrip().startswith("<tbody id=\"log-poller\"")
    [message] = messages_on(fragment)
    assert (message["webhook_id"], message["state"], message["attempts"]) == (message_id, "delivered", ["200", "503"])


def test_gave_up_failed_test_alert_and_errors_only_keep_whole_messages(app, owner_session, pager, receiver,
                                                                       run_worker, run_scheduled):
    receiver.answer(404)
    [refused] = send(app, pager)  # a 404 is not retried
    run_worker()
    owner_session.post(f"{PAGE}/test-alert")
    run_worker()  # a test alert answered 404: sent once
    receiver.answer(503)
    [recovered] = send(app, pager)
    run_worker()
    receiver.answer(200)
    run_scheduled()
    run_worker()  # failed once, then delivered

    shown = {message["webhook_id"]: message for message in messages_on(log_page(owner_session))}
    assert shown[refused]["state"] == "gave up"
    assert shown[refused]["says"] == "Gave up after attempt 1 of 7 (404): an answer that is not retried."
    [test_alert] = [message for message in shown.values() if message["webhook_id"] not in (refused, recovered)]
    assert test_alert["state"] == "failed" and test_alert["says"] == (
        "Failed (404); a test alert is sent once, never retried.")
    errors_only = {message["webhook_id"]: message for message in messages_on(log_page(owner_session, "errors_only=1"))}
    assert errors_only[recovered]["attempts"] == ["200", "503"]  # the whole message: it failed, then was delivered
    assert set(errors_only) == set(shown)
    assert [message["webhook_id"] for message in messages_on(log_page(owner_session, "status=2xx"))] == [recovered]


def test_a_retry_waiting_its_turn_is_due_now_and_one_dropped_on_re_enable_reads_stopped(
        app, owner_session, pager, receiver, run_worker, run_scheduled):
    receiver.answer(503)
    [message_id] = send(app, pager)
    run_worker()
    owner_session.post(f"{PAGE}/disable", data={"confirm": "1", "reason": "Receiver being moved"})
    run_scheduled()  # the retry's time has come: queued, not yet run
    [message] = messages_on(log_page(owner_session))
    assert message["state"] == "retrying" and message["says"].endswith("; next attempt due now.")
    run_worker()  # kept while disabled
    owner_session.post(f"{PAGE}/enable", data={"replay": "0"})  # ...and dropped
    [message] = messages_on(log_page(owner_session))
    assert (message["webhook_id"], message["state"]) == (message_id, "stopped")
    assert message["says"] == ("Stopped after attempt 1 of 7 (503): no later attempt was made. It was kept while "
                               "the app was disabled and not replayed when the app was re-enabled.")
