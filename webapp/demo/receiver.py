"""A tiny webhook receiver for the demo: verifies Hookline's signature and answers 200 at ``/webhook``.

    python -m webapp.demo.receiver --port 5055 --secret-file instance/demo_receiver_secret

``/broken`` is the receiver of the demo's story (``--story``): it reads the request and then never answers, as a
receiver that hangs does, until Hookline gives up (its WEBHOOK_TIMEOUT); each attempt counts as a timeout.
Each request is logged on one line of stdout (the demo sends it to ``instance/demo-logs/receiver.log``).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import select
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BROKEN_PATH = "/broken"
# The longest a hanging request is held; Hookline's timeout is far shorter, so it gives up first.
HANG_SECONDS = 120


def make_handler(secret_file: Path | None):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == BROKEN_PATH:
                self.hang()
                return
            verdict = "unchecked"
            if secret_file and secret_file.exists():
                expected = hmac.new(secret_file.read_text().strip().encode(), body, hashlib.sha256).hexdigest()
                ok = hmac.compare_digest(expected, self.headers.get("Sentry-Hook-Signature", ""))
                verdict = "valid" if ok else "INVALID"
            reply = json.dumps({"received": self.headers.get("Sentry-Hook-Resource"), "signature": verdict})
            self.send_response(200 if verdict != "INVALID" else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply.encode())

        def hang(self) -> None:
            """Answer nothing until the sender closes the connection (or HANG_SECONDS pass)."""
            select.select([self.connection], [], [], HANG_SECONDS)
            self.close_connection = True
            self.log_message("no answer: hung until the sender gave up")

        def log_message(self, format, *args):
            print(f"demo receiver: {self.command} {self.path} -> {format % args}", flush=True)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=5055)
    parser.add_argument("--secret-file", type=Path)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.secret_file))
    print(f"demo receiver listening on http://127.0.0.1:{args.port}/webhook "
          f"(and {BROKEN_PATH}, which never answers)", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
