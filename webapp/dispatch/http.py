"""The one way Hookline sends HTTP to a receiver: libcurl (through pycurl), time-boxed, size-capped, address-checked.

Why libcurl: a worker delivering hundreds a second is CPU-bound on its HTTP client. Measured on one machine
against the same receiver, a POST cost 0.8 ms of CPU through ``requests``, 0.3 ms through urllib3 and
0.07-0.09 ms through pycurl, and libcurl runs the whole transfer without the GIL, so busy slots do not
contend for it. It is also a well-kept HTTP/1.1 parser: conflicting lengths, bad chunk sizes, folded and
oversized headers are refused by code that the whole internet exercises.

The contract of ``post_webhook``:

- **Address guard on the connect.** libcurl resolves the host; every address it is about to connect to goes
  through ``_open_socket`` (``CURLOPT_OPENSOCKETFUNCTION``) and the policy first, so a DNS answer that
  changes between a check and the connect (rebinding) cannot reach a private address. Once one address is
  refused, the whole attempt is "blocked" (none of the host's other addresses is tried).
- **One deadline for the whole attempt** (``CURLOPT_TIMEOUT_MS``): DNS (libcurl's threaded resolver),
  connect, TLS handshake, sending, and reading the answer.
- http and https only, no redirects, no proxy from the environment, TLS verified against certifi's bundle with
  the host name checked, at most ``max_bytes`` of the answer's body kept (the rest is not read), at most
  MAX_HEADER_BYTES of header lines in all (interim 1xx answers and trailers included: a flood of them ends
  the attempt, so it costs a bounded amount of CPU).
- The failure kinds a user sees (``failures.describe``): blocked, dns, tls, refused, timeout, reset
  (closed without an answer), invalid (not valid HTTP), other.

Connections: each thread keeps one libcurl easy handle (a slot runs one attempt at a time) with its own
connection cache: at most CONNECTIONS_PER_THREAD idle connections (the oldest closed first), each closed
once idle for IDLE_SECONDS. So a process holds at most FILES_PER_SLOT descriptors per slot for deliveries
(the kept connections, the one in use, libcurl's wake-up pair), whatever the number of receiver hosts, and
at most one connection per slot to any one host.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import certifi
import pycurl

from ..core.netguard import AddressPolicy
from .failures import Failure, describe

logger = logging.getLogger(__name__)

CONNECTIONS_PER_THREAD = 4  # idle keep-alive connections one thread's handle keeps (least recently used closed)
# Open files one slot's deliveries may hold: its kept connections, the one in use and libcurl's wake-up pair.
FILES_PER_SLOT = CONNECTIONS_PER_THREAD + 3
IDLE_SECONDS = 30  # a kept connection idle this long is closed instead of reused
MAX_HEADER_BYTES = 32 * 1024  # header lines of one attempt in all: status lines, 1xx answers, headers, trailers
CA_BUNDLE = certifi.where()  # HTTPS receivers are verified the same on a host without system CAs

PATH_SAFE = "/%:@!$&'()*+,;=~-._"
QUERY_SAFE = PATH_SAFE + "?"

# libcurl's error codes, by what the user is told.
_TIMEOUT = {pycurl.E_OPERATION_TIMEDOUT}
_DNS = {pycurl.E_COULDNT_RESOLVE_HOST}
_REFUSED = {pycurl.E_COULDNT_CONNECT}
_TLS = {35, 53, 54, 58, 59, 60, 64, 66, 77, 80, 82, 83, 90, 91, 98}  # SSL_* and PEER_FAILED_VERIFICATION
_RESET = {pycurl.E_GOT_NOTHING, pycurl.E_SEND_ERROR, pycurl.E_RECV_ERROR}
# The receiver answered something that is not valid HTTP/1.1: not HTTP at all (or HTTP/0.9), a body shorter
# than its length, a bad chunk, conflicting lengths, an encoding that cannot be decoded.
_INVALID = {pycurl.E_UNSUPPORTED_PROTOCOL, 8, pycurl.E_PARTIAL_FILE,
            pycurl.E_BAD_CONTENT_ENCODING, 92, 100}  # 8: WEIRD_SERVER_REPLY, 92: HTTP2_STREAM, 100: TOO_LARGE


@dataclass
class WebhookResponse:
    """What one attempt produced. ``status_code`` is 0 when no HTTP response arrived; ``failure`` says why
    then, or that a 3xx was not followed."""

    status_code: int
    duration_ms: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    failure: Failure | None = None

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


class _Attempt:
    """What libcurl's callbacks collect during one attempt (the easy handle's callbacks write here)."""

    __slots__ = ("host", "policy", "max_bytes", "body", "body_cut", "raw_headers", "header_bytes",
                 "headers_overflowed", "blocked", "sockets")

    def __init__(self, host: str, policy: AddressPolicy, max_bytes: int):
        self.host, self.policy, self.max_bytes = host, policy, max_bytes
        self.body = bytearray()
        self.body_cut = False  # more body came than max_bytes: the transfer was stopped there on purpose
        self.raw_headers: list[bytes] = []  # every header line libcurl passed, as it came
        self.header_bytes = 0
        self.headers_overflowed = False
        self.blocked: str | None = None  # the guard's own words for the address it refused
        self.sockets: list[socket.socket] = []  # opened for libcurl, which connects a dup() of each

    def on_header(self, line: bytes):
        # Called by libcurl for every header line (1xx answers and trailers too), holding the GIL: kept to a
        # count and an append, the lines are read once the transfer is over (``final_headers``).
        self.header_bytes += len(line)
        if self.header_bytes > MAX_HEADER_BYTES:
            self.headers_overflowed = True
            return -1  # libcurl stops the transfer (CURLE_WRITE_ERROR)
        self.raw_headers.append(line)
        return None

    def final_headers(self) -> tuple[list[str], bool]:
        """Return the final answer's header lines, and whether the blank line that ends them came.

        An interim 1xx answer's lines are dropped with it (each answer starts with a status line); trailers,
        after the body, are not kept. libcurl takes a connection closed inside the headers as their end.
        """
        lines: list[str] = []
        ended = False
        for raw in self.raw_headers:
            if raw.startswith(b"HTTP/"):
                lines, ended = [], False
            elif raw in (b"\r\n", b"\n"):
                ended = True
            elif not ended:
                lines.append(raw.decode("iso-8859-1").rstrip("\r\n"))
        return lines, ended

    def on_body(self, chunk: bytes):
        room = self.max_bytes - len(self.body)
        if len(chunk) > room:
            self.body += chunk[:room]
            self.body_cut = True
            return 0  # libcurl stops reading (CURLE_WRITE_ERROR) and closes the connection
        self.body += chunk
        return None

    def open_socket(self, purpose, address):
        """Return a socket for ``address`` if the policy allows it, else SOCKET_BAD (libcurl then fails to connect)."""
        family, socktype, protocol, sockaddr = address
        ip = sockaddr[0]
        if self.blocked is None and not self.policy.is_allowed(ip.split("%", 1)[0]):
            self.blocked = f"{self.host} resolves to {ip}, which webhooks may not reach"
        if self.blocked is not None:
            return pycurl.SOCKET_BAD
        sock = socket.socket(family, socktype, protocol)
        self.sockets.append(sock)
        return sock

    def close_sockets(self) -> None:
        """Close this side's copies of the sockets libcurl was given (libcurl keeps and closes its own dup)."""
        for sock in self.sockets:
            sock.close()


class _Handles(threading.local):
    curl: pycurl.Curl | None = None


_handles = _Handles()
_abandoned: list = []  # a forked child's copies of its parent's handles: never cleaned up (their sockets are the parent's)


def _forget_after_fork() -> None:
    global _handles
    _abandoned.append(_handles)
    _handles = _Handles()


os.register_at_fork(after_in_child=_forget_after_fork)


class Transfers:
    """Where an attempt's transfer runs when not on the calling thread's own handle (``webapp.dispatch.hub``)."""

    def handle(self) -> pycurl.Curl:
        """Return the easy handle of the running attempt (made by ``new_handle``)."""
        raise NotImplementedError

    def perform(self, curl: pycurl.Curl) -> None:
        """Run the transfer as ``curl.perform()`` would: return when it is over, or raise ``pycurl.error``."""
        raise NotImplementedError


# Set inside a hub's greenlets: their attempts share the hub's libcurl multi handle instead of blocking a thread.
current_transfers: contextvars.ContextVar[Transfers | None] = contextvars.ContextVar("hookline_transfers",
                                                                                       default=None)


def _thread_handle() -> pycurl.Curl:
    """Return this thread's easy handle, made with the options every attempt shares."""
    curl = _handles.curl
    if curl is None:
        curl = _handles.curl = new_handle()
    return curl


def new_handle() -> pycurl.Curl:
    """Return an easy handle with the options every attempt shares."""
    curl = pycurl.Curl()
    curl.setopt(pycurl.NOSIGNAL, 1)  # threads: the resolver must not use signals for its timeout
    curl.setopt(pycurl.NOPROGRESS, 1)
    curl.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
    curl.setopt(pycurl.FOLLOWLOCATION, 0)
    curl.setopt(pycurl.PROXY, "")  # never a proxy from the environment (http_proxy, ALL_PROXY...)
    curl.setopt(pycurl.NOPROXY, "*")
    curl.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
    curl.setopt(pycurl.CAINFO, CA_BUNDLE)
    curl.setopt(pycurl.SSL_VERIFYPEER, 1)
    curl.setopt(pycurl.SSL_VERIFYHOST, 2)
    curl.setopt(pycurl.MAXCONNECTS, CONNECTIONS_PER_THREAD)
    curl.setopt(pycurl.MAXAGE_CONN, IDLE_SECONDS)
    curl.setopt(pycurl.POST, 1)
    return curl


def close_connections() -> None:
    """Close this thread's kept connections (and forget its handle: the next attempt makes a fresh one)."""
    curl, _handles.curl = _handles.curl, None
    if curl is not None:
        curl.close()


def post_webhook(
    url: str, body: bytes, headers: dict[str, str], *, policy: AddressPolicy, timeout: float, max_bytes: int
) -> WebhookResponse:
    """POST ``body`` to ``url`` and return what came back; network failures come back as status 0.

    1. Connect only to addresses ``policy`` allows; never follow redirects.
    2. Spend at most ``timeout`` seconds in all: resolving, connecting, the TLS handshake and the answer.
    3. Keep at most ``max_bytes`` of the response body.
    """
    started = time.monotonic()

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = _curl_url(url)
    except ValueError as exc:  # not an http(s) URL with a host, a bad port, a host IDNA cannot encode
        return _failed("dns" if isinstance(exc, UnicodeError) else "other", url, headers, timeout, elapsed_ms(), exc)
    attempt = _Attempt(urlsplit(url).hostname, policy, max_bytes)
    transfers = current_transfers.get()
    curl = _thread_handle() if transfers is None else transfers.handle()
    curl.setopt(pycurl.URL, target)
    curl.setopt(pycurl.TIMEOUT_MS, max(1, int(timeout * 1000)))
    curl.setopt(pycurl.POSTFIELDSIZE, len(body))
    curl.setopt(pycurl.POSTFIELDS, body)
    # "Expect:" and "Accept:" empty: libcurl adds neither (no 100-continue round trip for a large body).
    curl.setopt(pycurl.HTTPHEADER, [f"{name}: {value}" for name, value in headers.items()] + ["Expect:", "Accept:"])
    curl.setopt(pycurl.HEADERFUNCTION, attempt.on_header)
    curl.setopt(pycurl.WRITEFUNCTION, attempt.on_body)
    curl.setopt(pycurl.OPENSOCKETFUNCTION, attempt.open_socket)
    try:
        if transfers is None:
            curl.perform()
        else:
            transfers.perform(curl)
    except pycurl.error as exc:
        code = exc.args[0]
        if not (code == pycurl.E_WRITE_ERROR and attempt.body_cut):
            return _failed(_kind(code, attempt), url, headers, timeout, elapsed_ms(), exc, attempt)
    finally:
        curl.setopt(pycurl.POSTFIELDS, b"")  # the handle keeps no reference to this delivery's body
        attempt.close_sockets()
    header_lines, headers_ended = attempt.final_headers()
    if not headers_ended:  # the receiver closed the connection inside the answer's headers
        return _failed("reset", url, headers, timeout, elapsed_ms(), ConnectionResetError(), attempt)
    status = curl.getinfo(pycurl.RESPONSE_CODE)
    response_headers = _header_dict(header_lines)
    redirect = None
    if 300 <= status <= 399:
        redirect = describe("redirect", url, status=status, location=_get(response_headers, "Location"))
    return WebhookResponse(
        status_code=status,
        duration_ms=elapsed_ms(),
        body=_decode(bytes(attempt.body), _charset(_get(response_headers, "Content-Type"))),
        headers=response_headers,
        failure=redirect,
    )


def _kind(code: int, attempt: _Attempt) -> str:
    """Name what kept an attempt from an answer: blocked, dns, tls, refused, timeout, reset, invalid or other."""
    if attempt.blocked is not None:
        return "blocked"
    if attempt.headers_overflowed:
        return "invalid"
    if code in _TIMEOUT:
        return "timeout"
    if code in _DNS:
        return "dns"
    if code in _REFUSED:
        return "refused"
    if code in _TLS:
        return "tls"
    if code == pycurl.E_RECV_ERROR and attempt.final_headers()[1]:
        return "invalid"  # the answer's body broke off or was malformed (a bad chunk size): not a success
    if code in _RESET:
        return "reset"
    if code in _INVALID:
        return "invalid"
    return "other"


def _failed(kind: str, url: str, headers: dict, timeout: float, duration_ms: int, exc: Exception,
            attempt: _Attempt | None = None) -> WebhookResponse:
    # libcurl's text may quote the URL (and a token in it): only its error code is logged.
    code = exc.args[0] if isinstance(exc, pycurl.error) else exc.__class__.__name__
    logger.info("webhook.failed kind=%s request_id=%s curl_code=%s", kind, headers.get("Request-ID"), code)
    detail = None
    if kind == "blocked" and attempt is not None:
        detail = attempt.blocked
    elif kind == "invalid" and attempt is not None:
        detail = _invalid_detail(code, attempt)
    return WebhookResponse(0, duration_ms, failure=describe(kind, url, timeout=timeout, detail=detail))


def _invalid_detail(code, attempt: _Attempt) -> str:
    if attempt.headers_overflowed:
        return f"more than {MAX_HEADER_BYTES // 1024} KB of header lines (interim answers and trailers included)"
    if code == pycurl.E_PARTIAL_FILE:
        return "its body ended before the length it announced"
    if code == pycurl.E_BAD_CONTENT_ENCODING:
        return "its body could not be decoded"
    if code == pycurl.E_RECV_ERROR:
        return "its body was malformed or broke off"
    return "its status line or headers are malformed"


@functools.lru_cache(maxsize=1024)  # an app's URL is the same for each of its deliveries
def _curl_url(url: str) -> str:
    """Return ``url`` as libcurl is given it: http(s), the host IDNA-encoded, path and query percent-encoded.

    Characters a request line cannot carry (spaces, non-ASCII, quotes...) are percent-encoded as browsers send
    them; what is already encoded stays as it is. Credentials in the URL are not sent.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL with a host")
    host = parts.hostname
    host = f"[{host}]" if ":" in host else host.encode("idna").decode("ascii")
    port = parts.port  # a port out of range raises ValueError
    path = quote(parts.path or "/", safe=PATH_SAFE)
    query = f"?{quote(parts.query, safe=QUERY_SAFE)}" if parts.query else ""
    return f"{scheme}://{host}{f':{port}' if port else ''}{path}{query}"


def _header_dict(lines: list[str]) -> dict[str, str]:
    """Return the header lines as a dict: a header sent twice joined with ", ", a folded line with a space."""
    merged: dict[str, str] = {}
    names: dict[str, str] = {}
    last = None
    for line in lines:
        if line[:1] in (" ", "\t"):  # an obsolete folded continuation of the previous header
            if last is not None:
                merged[last] = f"{merged[last]} {line.strip()}".strip()
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not name:
            continue
        lowered = name.lower()
        if lowered in names:
            last = names[lowered]
            merged[last] += f", {value.strip()}"
        else:
            last = names[lowered] = name
            merged[name] = value.strip()
    return merged


def _get(headers: dict[str, str], name: str) -> str | None:
    name = name.lower()
    return next((value for key, value in headers.items() if key.lower() == name), None)


def _decode(content: bytes, encoding: str | None) -> str:
    """Decode with the receiver's declared charset, or UTF-8 when it declares one Python does not know."""
    try:
        return content.decode(encoding or "utf-8", errors="replace")
    except (LookupError, UnicodeError):  # an unknown charset, or one that cannot replace (idna): as UTF-8
        return content.decode("utf-8", errors="replace")


def _charset(content_type: str | None) -> str | None:
    """Return the ``charset`` parameter of a Content-Type value (``text/plain; charset="utf-8"``), if any."""
    for parameter in (content_type or "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').strip() or None
    return None
