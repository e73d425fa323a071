"""Resending a logged delivery: a fresh delivery of the same message, retried on its own, refused when it can't."""

import base64
import os

import pytest

from tests.conftest import scheduled_in
from tests.lifecycle import log_entries, send
from webapp.core.extensions import db
from webapp.dispatch.delivery import ResendRefused, enqueue_delivery_jobs, resend_logged_request
from webapp.dispatch.request_log import SentryAppWebhookRequestsBuffer
from webapp.models import SentryApp


def resend(app, app_id: int, request_id: str) -> str:
    with app.app_context():
        logged = SentryAppWebhookRequestsBuffer(app.extensions["redis"], app_id).find_request(request_id)
        return resend_logged_request(db.session.get(SentryApp, app_id), logged)


def test_a_failing_resend_is_retried_beside_the_original(app, pager, receiver, run_worker, run_scheduled):
    app.config["WEBHOOK_RETRY_SCHEDULE"] = (5.0, 300.0)
    receiver.answer(503)
    [message_id] = send(app, pager)
    run_worker()
    [entry] = log_entries(app, pager)
    resend(app, pager, entry["request_id"])
    run_worker()
    assert len(scheduled_in(app)) == 2  # the original's attempt 2 and the resend's, neither replacing the other
    receiver.answer(200)
    assert run_scheduled() == 2
    run_worker()
    attempts = sorted((e["attempt"], bool(e.get("resend")), e["response_code"]) for e in log_entries(app, pager))
    assert attempts == [(1, False, 503), (1, True, 503), (2, False, 200), (2, True, 200)]
    assert {r.headers["Webhook-Id"] for r in receiver.received} == {message_id}
    assert len({r.body for r in receiver.received}) == 1


def test_a_body_too_large_to_keep_cannot_be_resent(app, pager, receiver, run_worker):
    receiver.answer(200)
    noise = base64.b64encode(os.urandom(40_000)).decode()  # does not compress: over what a record keeps whole
    with app.app_context():
        enqueue_delivery_jobs([(pager, "issue.created", {"issue": {"id": "1", "noise": noise}}, None, "msg_big")])
    run_worker()
    [entry] = log_entries(app, pager)
    with pytest.raises(ResendRefused, match="not kept whole"):
        resend(app, pager, entry["request_id"])
    run_worker()
    assert len(receiver.received) == 1
