"""The request log through the API as messages: each webhook-id with its state and its attempts, filters, search."""

from tests.lifecycle import log_entries, send

URL = "/api/0/sentry-apps/pager/webhook-messages/"


def test_messages_with_their_attempts_state_and_next_attempt(app, api, pager_api, receiver, run_worker,
                                                             run_scheduled):
    receiver.answer(503)
    first, second = send(app, 1, 2)
    run_worker()
    run_scheduled()
    receiver.answer(200)
    run_worker()  # attempt 2 of each delivered
    [retrying] = send(app, 1)
    receiver.answer(503)
    run_worker()

    response = api("GET", URL, who="member")
    assert response.status_code == 200
    listed = {message["webhookId"]: message for message in response.json}
    assert set(listed) == {first, second, retrying}
    for message_id in (first, second):
        message = listed[message_id]
        assert (message["state"], message["stateText"], message["nextAttemptAt"]) == ("delivered", "delivered", None)
        assert [(a["attempt"], a["responseCode"], a["webhookId"]) for a in message["attempts"]] == [
            (2, 200, message_id), (1, 503, message_id)]
        assert "requestBody" not in message["attempts"][1]  # a member sees no bodies, as in webhook-requests/
    waiting = listed[retrying]
    assert waiting["state"] == "retrying" and waiting["nextAttemptAt"].endswith("Z")
    assert (waiting["kept"], waiting["missedWhileDisabled"], waiting["replayedAs"], waiting["resentAs"]) == (
        False, False, [], [])
    assert response.json[0]["webhookId"] == retrying  # newest activity first


def test_filters_and_search_as_on_the_page(app, api, pager_api, receiver, run_worker):
    receiver.answer(200)
    delivered, = send(app, 1)
    run_worker()
    receiver.answer(404)
    refused, = send(app, 1)
    run_worker()
    request_id = next(e["request_id"] for e in log_entries(app, 1) if e["message_id"] == refused)

    def ids(query):
        response = api("GET", f"{URL}?{query}")
        assert response.status_code == 200, response.json
        return [message["webhookId"] for message in response.json]

    assert ids("errorsOnly=true") == [refused]
    assert ids("status=2xx") == [delivered]
    assert ids(f"query={delivered}") == [delivered]
    assert ids(f"query={request_id}") == [refused]
    assert ids(f"query={request_id}&status=2xx") == []
    assert ids(f"query={'0' * 32}") == []
    assert ids("eventType=issue.resolved") == []
    for bad in ("eventType=nope", "status=7xx", "errorsOnly=maybe"):
        assert api("GET", f"{URL}?{bad}").status_code == 400
    assert api("GET", URL, who="eve").status_code == 404  # another organisation's app


def test_a_resend_is_an_attempt_of_the_same_message(app, api, pager_api, receiver, run_worker):
    receiver.answer(500)
    [message_id] = send(app, 1)
    run_worker()
    [entry] = api("GET", "/api/0/sentry-apps/pager/webhook-requests/").json
    receiver.answer(200)
    assert api("POST", f"/api/0/sentry-apps/pager/webhook-requests/{entry['requestId']}/resend/").status_code == 202
    run_worker()
    [message] = api("GET", URL).json
    resend = message["attempts"][0]
    assert (message["webhookId"], message["state"], resend["resend"]) == (message_id, "delivered", True)
    assert message["resentAs"] == [resend["requestId"]]
