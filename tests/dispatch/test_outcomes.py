from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from webapp.dispatch.failures import describe
from webapp.dispatch.http import WebhookResponse
from webapp.dispatch.outcomes import classify


@pytest.mark.parametrize(
    ("code", "failure", "kind", "counted", "retry"),
    [
        (200, None, "success", True, False),
        (204, None, "success", True, False),
        (0, "timeout", "timeout", True, True),
        (0, "refused", "timeout", True, True),
        (0, "dns", "timeout", True, True),
        (0, "tls", "timeout", True, True),
        (0, "reset", "timeout", True, True),
        (0, "other", "timeout", True, True),
        (0, "blocked", "error", True, False),
        (429, None, "error", False, True),
        (502, None, "error", True, True),
        (503, None, "error", True, True),
        (504, None, "error", True, True),
        (500, None, "error", True, True),
        (501, None, "error", True, True),
        (301, None, "error", True, False),
        (404, None, "error", True, False),
        (401, None, "error", True, False),
        (410, None, "fatal", True, False),
    ],
)
def test_each_answer_is_classified_as_the_spec_says(code, failure, kind, counted, retry):
    explained = describe(failure, "http://r.example/hook", timeout=1) if failure else None
    outcome = classify(WebhookResponse(code, 5, failure=explained))
    assert (outcome.kind, outcome.counted, outcome.retry) == (kind, counted, retry)


def test_retry_after_in_seconds_and_as_a_date(clock):
    assert classify(WebhookResponse(503, 5, headers={"Retry-After": "120"})).retry_after == 120
    when = format_datetime(clock.now() + timedelta(minutes=10), usegmt=True)
    assert classify(WebhookResponse(429, 5, headers={"retry-after": when})).retry_after == pytest.approx(600, abs=1)
    assert classify(WebhookResponse(503, 5, headers={"Retry-After": "soon"})).retry_after is None
    assert classify(WebhookResponse(503, 5, headers={"Retry-After": "²"})).retry_after is None
    assert classify(WebhookResponse(500, 5, headers={"Retry-After": "120"})).retry_after is None  # only 429/502-504


def test_a_date_in_the_past_means_now(clock):
    past = format_datetime(datetime(2020, 1, 1, tzinfo=timezone.utc), usegmt=True)
    assert classify(WebhookResponse(503, 5, headers={"Retry-After": past})).retry_after == 0
