"""A real HTTP receiver (pytest-httpserver) that checks signatures with its own code, as a customer would."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from werkzeug import Request, Response


class InFlight:
    """Counts handlers still running, so a test can wait for a slow answer before it ends."""

    def __init__(self):
        self._count = 0
        self._idle = threading.Condition()

    def __enter__(self):
        with self._idle:
            self._count += 1

    def __exit__(self, *exc):
        with self._idle:
            self._count -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._count == 0, timeout)


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    sentry_signature_ok: bool
    standard_webhooks_ok: bool

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    def __init__(self, httpserver):
        self.server = httpserver
        self.received: list[Received] = []
        self.secret: str | None = None
        self.secrets: dict[str, str] = {}  # per path, for several apps on one receiver
        self.in_flight = InFlight()

    def url(self, path: str = "/hook") -> str:
        return self.server.url_for(path)

    def answer(self, status=200, body='{"ok": true}', headers=None, path="/hook", **kwargs):
        """Replace whatever the receiver answered before with this (the endpoint was "fixed" or "broke")."""
        self.server.clear_all_handlers()
        self.respond(status, body, headers, path, **kwargs)

    def respond(self, status=200, body='{"ok": true}', headers=None, path="/hook", delay=0.0, content_type="application/json"):
        """Answer every POST to ``path`` like this, recording (and checking) what arrived."""

        def handler(request: Request) -> Response:
            with self.in_flight:
                self.received.append(self._check(request))
                if delay:
                    time.sleep(delay)
                return Response(body, status=status, headers=headers or {}, content_type=content_type)

        self.server.expect_request(path, method="POST").respond_with_handler(handler)

    def _check(self, request: Request) -> Received:
        body = request.get_data()
        headers = dict(request.headers)
        sentry_ok = standard_ok = False
        secret = self.secrets.get(request.path, self.secret)
        if secret:
            expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
            sentry_ok = hmac.compare_digest(expected, request.headers.get("Sentry-Hook-Signature", ""))
            whsec = "whsec_" + base64.b64encode(secret.encode("utf-8")).decode()
            try:
                Webhook(whsec).verify(body, {k.lower(): v for k, v in headers.items()})
                standard_ok = True
            except WebhookVerificationError:
                standard_ok = False
        return Received(request.path, headers, body, sentry_ok, standard_ok)

    def at(self, path: str) -> list[Received]:
        return [received for received in self.received if received.path == path]

    def of(self, resource_action: str, path: str | None = None) -> list[Received]:
        """Return what arrived for ``resource.action`` (e.g. ``issue.created``), oldest first."""
        resource, action = resource_action.split(".")
        return [r for r in self.received if r.headers.get("Sentry-Hook-Resource") == resource
                and r.json.get("action") == action and (path is None or r.path == path)]


JS_VERIFIER = Path(__file__).parent / "js" / "verify_sentry_signature.js"


def rejected_by_sentrys_docs(receiver: Receiver) -> list[str]:
    """Verify each body as receivers written from Sentry's docs do; return "resource.action: how" of each refused.

    - Python: ``json.dumps(parsed, separators=(",", ":"))`` must be the body, byte for byte (and so its HMAC);
    - Node (when ``node`` is installed): ``HMAC(JSON.stringify(JSON.parse(body)))`` must be the signature.
    """
    received, refused = receiver.received, []
    for request in received:
        rewritten = json.dumps(json.loads(request.body), separators=(",", ":")).encode()
        if rewritten != request.body:
            refused.append(f"{request.headers['Sentry-Hook-Resource']}.{request.json['action']}: Python rewrites it")
    if shutil.which("node"):
        cases = [{"secret": receiver.secrets.get(request.path, receiver.secret), "body": request.body.decode(), "signature": request.headers["Sentry-Hook-Signature"]}
                 for request in received]
        with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
            json.dump(cases, file)
            file.flush()
            verdicts = json.loads(subprocess.run(["node", str(JS_VERIFIER), file.name], capture_output=True,
                                                 check=True, timeout=60).stdout)
        refused += [f"{request.headers['Sentry-Hook-Resource']}.{request.json['action']}: Node's JSON.stringify"
                    for request, ok in zip(received, verdicts) if not ok]
    return refused
