import hashlib
import hmac
import json

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from webapp.dispatch.signing import build_headers, new_message_id, standard_webhooks_secret

SECRET = "a1b2c3" * 10


def test_sentry_signature_is_hex_hmac_sha256_of_the_exact_body():
    body = json.dumps({"action": "triggered", "data": {"text": "é ✓"}}).encode()
    headers = build_headers("event_alert", body, [SECRET], new_message_id(), now=1_700_000_000)
    assert headers["Sentry-Hook-Signature"] == hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["Sentry-Hook-Resource"] == "event_alert"
    assert headers["Sentry-Hook-Timestamp"] == "1700000000"
    assert headers["Content-Type"] == "application/json"
    assert len(headers["Request-ID"]) == 32


def test_standard_webhooks_library_verifies_the_signature():
    body = b'{"action": "created"}'
    message_id = new_message_id()
    headers = build_headers("issue", body, [SECRET], message_id)
    verified = Webhook(standard_webhooks_secret(SECRET)).verify(body, {k.lower(): v for k, v in headers.items()})
    assert verified == {"action": "created"}
    assert headers["webhook-id"] == message_id


def test_a_tampered_body_fails_standard_webhooks_verification():
    headers = build_headers("issue", b'{"a": 1}', [SECRET], new_message_id())
    with pytest.raises(WebhookVerificationError):
        Webhook(standard_webhooks_secret(SECRET)).verify(b'{"a": 2}', {k.lower(): v for k, v in headers.items()})


def test_every_secret_signs_so_old_and_new_both_verify():
    old, new = "old" * 20, "new" * 20
    body = b"{}"
    headers = {k.lower(): v for k, v in build_headers("issue", body, [new, old], new_message_id()).items()}
    for secret in (old, new):
        Webhook(standard_webhooks_secret(secret)).verify(body, headers)
    assert headers["sentry-hook-signature"] == hmac.new(new.encode(), body, hashlib.sha256).hexdigest()
