"""What every web response gets: security headers, no caching of pages and secrets, a body limit, sendable headers."""

from __future__ import annotations

import string
from urllib.parse import quote

from flask import Flask, jsonify, request
from werkzeug.datastructures import Headers
from werkzeug.exceptions import RequestEntityTooLarge

# Only Hookline's own files may run or style a page: no inline scripts, styles or handlers (htmx is told
# not to inject its indicator styles and not to evaluate code, see base.html), no framing, no plugins.
CONTENT_SECURITY_POLICY = ("default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; "
                           "object-src 'none'")

# A header value is sent as Latin-1; one with other characters (a host name such as ☕.example in a Warning)
# would fail in the WSGI server, after the view has committed. Such a value is sent percent-encoded (UTF-8)
# instead, leaving printable ASCII as it is.
HEADER_SAFE = "".join(character for character in string.printable if character not in "%\t\n\r\x0b\x0c")

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def init_app(app: Flask) -> None:
    app.after_request(encode_header_values)  # registered first, so it runs last: it sees every header
    app.after_request(add_security_headers)
    app.register_error_handler(RequestEntityTooLarge, body_too_large)


def add_security_headers(response):
    """Add the security headers, and ``no-store`` to everything but static files (pages carry tokens, secrets)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def encode_header_values(response):
    """Percent-encode any header value that is not plain ASCII, so that no header can fail to be sent."""
    if all(value.isascii() for value in response.headers.values()):
        return response
    response.headers = Headers([(name, value if value.isascii() else quote(value, safe=HEADER_SAFE))
                                for name, value in response.headers.items()])
    return response


def body_too_large(error: RequestEntityTooLarge):
    """Answer 413 naming the limit: ``{"detail"}`` under /api/, a plain error page elsewhere."""
    detail = f"The request body is larger than the {request.max_content_length} bytes this server accepts."
    if request.path.startswith("/api/"):
        return jsonify(detail=detail), 413
    return RequestEntityTooLarge(description=detail)
