"""The one way Hookline sends HTTP to a receiver: time-boxed, size-capped, no redirects, address-checked.

Deliveries go through the standard library's ``http.client`` with a small keep-alive pool of its own. A
worker process delivering hundreds a second is CPU-bound on its HTTP client, and each layer costs: measured on
one machine against the same receiver, a POST took 0.70 ms of CPU through ``requests``, 0.31 ms through
urllib3's pool manager (with the guard and deadline below), 0.15 ms through ``http.client`` and 0.12 ms with
the response headers read by ``_LeanResponse`` instead of the ``email`` package's parser. What urllib3 added
on top of ``http.client`` (pools, retries, redirects, decoding) is either not wanted here or a few lines below.

Every connection is checked (``_guarded_connect``): the host is resolved once, every address it resolves to
must be allowed by the policy, and the socket connects to that checked address itself, so a DNS answer that
changes between check and connect (rebinding) cannot reach a private address. HTTPS is verified against
certifi's CA bundle, with the host name checked, as ``requests`` does.
"""

from __future__ import annotations

import functools
import http.client
import logging
import os
import select
import socket
import ssl
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import certifi

from . import deadlines
from .failures import Failure, describe
from ..netguard import AddressPolicy, BlockedDestination, UnresolvableHost

logger = logging.getLogger(__name__)


# Sockets the current thread's attempt uses, so the deadline watchdog can cut them (see post_webhook).
_inflight = threading.local()


def _track(sock) -> None:
    sockets = getattr(_inflight, "sockets", None)
    if sockets is not None and sock is not None:
        sockets.append(sock)
        if time.monotonic() >= _inflight.deadline:  # the watchdog has been and gone: cut it now
            _cut([sock])


def _remaining() -> float:
    """Seconds left of the current attempt; TimeoutError when none are."""
    left = _inflight.deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the attempt's time is up")
    return left


def _cut(sockets: list) -> None:
    """Shut the attempt's sockets: a receiver trickling bytes cannot hold a worker past the deadline.

    ``socket.socket.shutdown`` even for a TLS socket: its own ``shutdown`` would also drop the TLS state under
    the thread still reading it (from this, the watchdog's thread).
    """
    for sock in list(sockets):
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass


class BlockedConnection(OSError):
    """The destination address was refused at connect time (SSRF guard)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.explanation = message  # the guard's own wording, fit to show to the user


class UnresolvedConnection(OSError):
    """The destination's host name did not resolve at connect time."""


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


def _guarded_connect(policy: AddressPolicy, address: tuple[str, int], timeout, source_address=None) -> socket.socket:
    """Connect to ``address`` (host, port) only through an address ``policy`` allows (DNS resolved once, here)."""
    host, port = address
    try:
        addresses = policy.check_resolved(host, port)
    except UnresolvableHost as exc:
        raise UnresolvedConnection(str(exc)) from None  # a DNS failure: retried like a timeout
    except BlockedDestination as exc:
        raise BlockedConnection(str(exc)) from None
    for index, resolved in enumerate(addresses):
        try:  # what is left of the attempt's time, not a fresh ``timeout``: DNS and earlier addresses used some
            sock = socket.create_connection((resolved, port), _remaining(), source_address)
        except OSError:
            if index == len(addresses) - 1:
                raise
            continue
        _track(sock)
        try:
            sock.settimeout(_remaining())
        except TimeoutError:
            sock.close()
            raise
        return sock
    raise UnresolvedConnection(f"{host} resolved to no address")


class _LeanResponse(http.client.HTTPResponse):
    """``http.client``'s response, with the header block read by ``_read_header_block``.

    ``begin`` is the standard library's (status line, chunked, length, keep-alive) except for two things: every
    interim 1xx answer is skipped (the stock one skips only 100, so a 103 would be taken for the answer and
    the real one read as the next request's), and the headers are read by ``_read_header_block`` (the stock
    one hands them to the ``email`` package's feed parser, which was a third of the CPU of a whole POST).
    """

    def begin(self):
        if self.headers is not None:
            return
        while True:
            version, status, reason = self._read_status()
            if not 100 <= status < 200 or status == http.client.SWITCHING_PROTOCOLS:
                break
            http.client._read_headers(self.fp)  # an interim answer (100 Continue, 103 Early Hints...): skipped
        self.code = self.status = status
        self.reason = reason.strip()
        if version in ("HTTP/1.0", "HTTP/0.9"):
            self.version = 10
        elif version.startswith("HTTP/1."):
            self.version = 11
        else:
            raise http.client.UnknownProtocol(version)
        self.headers = self.msg = _read_header_block(self.fp)
        transfer_encoding = self.headers.get("transfer-encoding")
        self.chunked = bool(transfer_encoding and transfer_encoding.lower() == "chunked")
        self.chunk_left = None
        self.will_close = self._check_close()
        self.length = None
        length = self.headers.get("content-length")
        if length and not self.chunked:
            try:
                self.length = int(length)
            except ValueError:
                self.length = None
            else:
                if self.length < 0:
                    self.length = None
        if status in (http.client.NO_CONTENT, http.client.NOT_MODIFIED) or 100 <= status < 200 \
                or self._method == "HEAD":
            self.length = 0
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True  # no length and kept open: the body ends when the receiver closes


def _read_header_block(fp) -> http.client.HTTPMessage:
    """Read the header lines (http.client's own limits on line length and count) into an ``HTTPMessage``."""
    message = http.client.HTTPMessage()
    lines = http.client._read_headers(fp)
    if lines[-1] == b"":  # the connection ended (or was cut) before the blank line that ends the headers
        raise http.client.RemoteDisconnected("the answer ended inside its headers")
    for raw in lines:
        line = raw.decode("iso-8859-1").rstrip("\r\n")
        if not line:
            continue
        if line[0] in " \t":  # an obsolete folded continuation of the previous header
            if message._headers:
                name, value = message._headers[-1]
                message._headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if colon and name.strip():
            message._headers.append((name.strip(), value.strip()))
    return message


class _OneSend:
    """Send a request's head and a bytes body in one ``send``: one system call and one packet, not two."""

    def _send_output(self, message_body=None, encode_chunked=False):
        if not isinstance(message_body, bytes) or encode_chunked:
            return super()._send_output(message_body, encode_chunked=encode_chunked)
        self._buffer.extend((b"", b""))
        head = b"\r\n".join(self._buffer)
        del self._buffer[:]
        self.send(head + message_body)


class _Connection(_OneSend, http.client.HTTPConnection):
    response_class = _LeanResponse

    def __init__(self, host: str, port: int, policy: AddressPolicy, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._create_connection = functools.partial(_guarded_connect, policy)  # what connect() opens with


class _TLSConnection(_OneSend, http.client.HTTPSConnection):
    response_class = _LeanResponse

    def __init__(self, host: str, port: int, policy: AddressPolicy, timeout: float):
        super().__init__(host, port, timeout=timeout, context=_tls_context())
        self._create_connection = functools.partial(_guarded_connect, policy)

    def connect(self):
        http.client.HTTPConnection.connect(self)  # the guarded TCP connection
        # The handshake (certificate and host name checked) on the TLS socket, tracked first, so the watchdog
        # can cut a receiver that stalls it.
        sock = self._context.wrap_socket(self.sock, server_hostname=self.host, do_handshake_on_connect=False)
        self.sock = sock
        _track(sock)
        sock.do_handshake()


_tls = None


def _tls_context() -> ssl.SSLContext:
    """certifi's CA bundle, as requests uses: HTTPS receivers are verified the same on a host without system CAs."""
    global _tls
    if _tls is None:
        _tls = ssl.create_default_context(cafile=certifi.where())
    return _tls


POOLS_KEPT = 100  # hosts whose keep-alive connections a process keeps (least recently used dropped)
CONNECTIONS_PER_HOST = 32  # idle connections kept per host; more may be open at once, the extra are closed after


class ConnectionPool:
    """Idle keep-alive connections of this process, per (scheme, host, port, address policy).

    A connection is taken by one attempt at a time and given back only after its response was read to the
    end and the receiver did not ask to close it. One that the receiver closed while idle is noticed before
    reuse (its socket reads as ready) and dropped, as urllib3 does.
    """

    def __init__(self, hosts: int = POOLS_KEPT, per_host: int = CONNECTIONS_PER_HOST):
        self.hosts, self.per_host = hosts, per_host
        self._idle: OrderedDict[tuple, list] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: tuple):
        """Return an idle connection for ``key`` that still looks open, or None."""
        while True:
            with self._lock:
                idle = self._idle.get(key)
                if not idle:
                    return None
                connection = idle.pop()
            if connection.sock is not None and not _readable(connection.sock):
                return connection
            connection.close()

    def give_back(self, key: tuple, connection) -> None:
        dropped = []
        with self._lock:
            idle = self._idle.setdefault(key, [])
            self._idle.move_to_end(key)
            if len(idle) < self.per_host:
                idle.append(connection)
            else:
                dropped.append(connection)
            while len(self._idle) > self.hosts:
                dropped.extend(self._idle.popitem(last=False)[1])
        for extra in dropped:
            extra.close()

    def forget(self) -> None:
        """Drop every idle connection without closing it (a forked child: they stay its parent's)."""
        self._idle, self._lock = OrderedDict(), threading.Lock()

    def clear(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, OrderedDict()
        for connections in idle.values():
            for connection in connections:
                connection.close()


def _readable(sock) -> bool:
    """An idle keep-alive socket that reads as ready was closed (or spoken to) by the receiver: not reusable."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    try:
        return bool(poller.poll(0))
    except OSError:
        return True


_pool = ConnectionPool()
os.register_at_fork(after_in_child=_pool.forget)


def post_webhook(
    url: str, body: bytes, headers: dict[str, str], *, policy: AddressPolicy, timeout: float, max_bytes: int
) -> WebhookResponse:
    """POST ``body`` to ``url`` and return what came back; network failures come back as status 0.

    1. Connect only to addresses ``policy`` allows; never follow redirects.
    2. Spend at most ``timeout`` seconds connecting and waiting, and stop reading the body at the deadline.
    3. Read at most ``max_bytes`` of the response body.
    """
    started = time.monotonic()
    deadline = started + timeout
    _inflight.sockets, _inflight.deadline = [], deadline
    watchdog = deadlines.watch.call_at(deadline, _cut, _inflight.sockets)
    reusable = None
    try:
        response, reusable = _post(url, body, headers, policy, timeout, max_bytes, started, deadline)
        return response
    finally:
        cut_pending = deadlines.watch.cancel(watchdog)
        _inflight.sockets = None
        if reusable is not None:
            key, connection = reusable
            if cut_pending:  # the watchdog will not cut it now: safe to hand to the next attempt
                _pool.give_back(key, connection)
            else:
                connection.close()


def _post(url, body, headers, policy, timeout, max_bytes, started, deadline) -> tuple[WebhookResponse, tuple | None]:
    """Return what came back, and the (pool key, connection) to keep alive, if it can be."""
    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    def failed(kind: str, exc: Exception, detail: str | None = None) -> WebhookResponse:
        # The library's text may quote the URL (and a token in it): only the exception types are logged.
        logger.info("webhook.failed kind=%s request_id=%s causes=%s", kind, headers.get("Request-ID"),
                    ",".join(type(cause).__name__ for cause in _causes(exc)))
        return WebhookResponse(0, elapsed_ms(), failure=describe(kind, url, timeout=timeout, detail=detail)), None

    connection = None
    try:
        key, target = _destination(url, policy)
        connection = _pool.take(key)
        if connection is not None:
            _track(connection.sock)  # a reused keep-alive connection: the watchdog must be able to cut it too
            connection.sock.settimeout(max(deadline - time.monotonic(), 0.001))
            try:
                connection.request("POST", target, body=body, headers=headers)
                response = connection.getresponse()
            except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):  # RemoteDisconnected too
                # The receiver closed the idle connection as the request went out (its keep-alive time ran
                # out between the check and the send): not an answer. Once more, on a connection of its own.
                connection.close()
                connection = None
                if time.monotonic() >= deadline:
                    raise
        if connection is None:
            scheme, host, port, _ = key
            connection = (_TLSConnection if scheme == "https" else _Connection)(host, port, policy, timeout)
            connection.request("POST", target, body=body, headers=headers)
            response = connection.getresponse()
    except (http.client.HTTPException, OSError, ValueError) as exc:  # ValueError: a URL or header refused
        if connection is not None:
            connection.close()
        if time.monotonic() >= deadline:  # past the deadline: the watchdog cut the receiver
            return failed("timeout", exc)
        kind = failure_kind(exc)
        blocked = next((cause for cause in _causes(exc) if isinstance(cause, BlockedConnection)), None)
        return failed(kind, exc, detail=blocked.explanation if blocked is not None else None)

    content = _read_capped(response, max_bytes, deadline)
    reusable = None
    if response.isclosed() and connection.sock is not None and response.status >= 200 \
            and time.monotonic() < deadline:
        reusable = (key, connection)  # read to its end and kept open by the receiver: kept for the next attempt
    else:
        response.close()
        connection.close()
    response_headers = _merged(response.headers)
    redirect = None
    if 300 <= response.status <= 399:
        redirect = describe("redirect", url, status=response.status, location=response.headers.get("Location"))
    return WebhookResponse(
        status_code=response.status,
        duration_ms=elapsed_ms(),
        body=_decode(content, _charset(response.headers.get("Content-Type"))),
        headers=response_headers,
        failure=redirect,
    ), reusable


def _destination(url: str, policy: AddressPolicy) -> tuple[tuple, str]:
    """Return the pool key (scheme, host, port, policy) and the request target (path and query) of ``url``."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL with a host")
    port = parts.port or (443 if scheme == "https" else 80)  # a port out of range raises ValueError
    # Characters a request line cannot carry (spaces, non-ASCII, quotes...) percent-encoded, as urllib3 and
    # browsers send them; what is already encoded stays as it is.
    target = quote(parts.path or "/", safe=PATH_SAFE) + (f"?{quote(parts.query, safe=QUERY_SAFE)}" if parts.query else "")
    return (scheme, parts.hostname, port, policy), target


PATH_SAFE = "/%:@!$&'()*+,;=~-._"
QUERY_SAFE = PATH_SAFE + "?"


def _merged(message: http.client.HTTPMessage) -> dict[str, str]:
    """Return the response headers as a dict; a header sent more than once is joined with ", " (as urllib3 does)."""
    merged: dict[str, str] = {}
    names: dict[str, str] = {}
    for name, value in message._headers:
        lowered = name.lower()
        if lowered in names:
            merged[names[lowered]] += f", {value}"
        else:
            names[lowered] = name
            merged[name] = value
    return merged


def failure_kind(exc: BaseException) -> str:
    """Name what kept a request from getting an answer: blocked, dns, tls, refused, reset, timeout or other."""
    causes = _causes(exc)

    def found(*types) -> bool:
        return any(isinstance(cause, types) for cause in causes)

    if found(BlockedConnection):
        return "blocked"
    if found(UnresolvedConnection, socket.gaierror):
        return "dns"
    if found(ssl.SSLError, ssl.CertificateError):
        return "tls"
    if found(ConnectionRefusedError):
        return "refused"
    if found(TimeoutError):
        return "timeout"
    if found(http.client.InvalidURL):  # a host or path the request line cannot carry
        return "other"
    # RemoteDisconnected (closed before answering) is a ConnectionResetError; a status line or headers that are
    # not HTTP are an HTTPException: the receiver (or something in front of it) broke off the exchange.
    if found(ConnectionResetError, ConnectionAbortedError, BrokenPipeError, http.client.HTTPException):
        return "reset"
    return "other"


def _causes(exc: BaseException) -> list[BaseException]:
    """Return ``exc`` and every exception it wraps (in its args, reason and causes)."""
    found: list[BaseException] = []
    pending = [exc]
    while pending and len(found) < 20:
        current = pending.pop()
        if current is None or any(current is seen for seen in found):
            continue
        found.append(current)
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        pending.extend([getattr(current, "reason", None), current.__cause__, current.__context__])
        pending = [item for item in pending if isinstance(item, BaseException)]
    return found


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


def _read_capped(response: http.client.HTTPResponse, max_bytes: int, deadline: float) -> bytes:
    content = bytearray()
    try:
        while len(content) < max_bytes and time.monotonic() < deadline:
            chunk = response.read(min(8192, max_bytes - len(content)))
            if not chunk:
                break
            content += chunk
    except (http.client.HTTPException, OSError, ValueError) as exc:  # ValueError: a malformed chunk size
        # The status line and headers arrived; a body cut short by the receiver or by the
        # deadline is still worth showing, so keep what was read. Common and harmless: one line.
        logger.info("webhook.body_cut_short read=%s reason=%s", len(content), exc.__class__.__name__)
    return bytes(content)
