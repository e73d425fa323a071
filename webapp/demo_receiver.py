"""A tiny webhook receiver for the demo: verifies Hookline's signature and answers 200.

    python -m webapp.demo_receiver --port 5055 --secret-file instance/demo_receiver_secret
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def make_handler(secret_file: Path | None):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
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

        def log_message(self, format, *args):
            print(f"demo receiver: {self.command} {self.path} -> {format % args}", flush=True)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=5055)
    parser.add_argument("--secret-file", type=Path)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.secret_file))
    print(f"demo receiver listening on http://127.0.0.1:{args.port}/webhook", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
