"""The one way Hookline sends HTTP to a receiver: time-boxed, size-capped, no redirects, address-checked.

Deliveries go through urllib3, the connection pool ``requests`` itself sends with, without the ``requests``
layer on top: that layer (settings merge, cookie jar, hooks, URL re-parsing) costs 1.8 ms of CPU per POST
against 0.6 ms for urllib3 alone, and a worker process delivering hundreds a second is CPU-bound on it.
One pool manager per process (per address policy) keeps connections alive between deliveries.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.message import Message

import certifi
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, PoolManager, Timeout
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError, HTTPError, NameResolutionError, NewConnectionError, ProtocolError, ReadTimeoutError, SSLError,
)
from urllib3.response import BaseHTTPResponse

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


def _cut(sockets: list) -> None:
    """Shut the attempt's sockets: a receiver trickling bytes cannot hold a worker past the deadline."""
    for sock in list(sockets):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class BlockedConnection(NewConnectionError):
    """The destination address was refused at connect time (SSRF guard)."""

    def __init__(self, conn, message: str):
        super().__init__(conn, message)
        self.explanation = message  # the guard's own wording, fit to show to the user


class UnresolvedConnection(NewConnectionError):
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


def _guarded(connection_class: type, policy: AddressPolicy) -> type:
    """Return a subclass of ``connection_class`` that checks every resolved address before connecting."""

    class GuardedConnection(connection_class):
        def _new_conn(self):
            # Resolve here and connect to the checked address itself, so a DNS answer that changes
            # between the check and the connect (rebinding) cannot slip a private address through.
            try:
                addresses = policy.check_resolved(self._dns_host, self.port)
            except UnresolvableHost as exc:
                raise UnresolvedConnection(self, str(exc)) from None  # a DNS failure: retried like a timeout
            except BlockedDestination as exc:
                raise BlockedConnection(self, str(exc)) from None
            host = self._dns_host
            try:
                for index, address in enumerate(addresses):
                    self._dns_host = address
                    try:
                        sock = super()._new_conn()
                        _track(sock)
                        return sock
                    except NewConnectionError:
                        if index == len(addresses) - 1:
                            raise
            finally:
                self._dns_host = host

        def request(self, *args, **kwargs):
            _track(self.sock)  # a reused keep-alive connection: the watchdog must be able to cut it too
            return super().request(*args, **kwargs)

    return GuardedConnection


POOLS_KEPT = 100  # hosts whose keep-alive connections a process keeps (least recently used dropped)
CONNECTIONS_PER_HOST = 32  # idle connections kept per host; more may be open at once, the extra are closed after

_pools: dict[AddressPolicy, PoolManager] = {}


def get_pool_manager(policy: AddressPolicy) -> PoolManager:
    """Return this process's pool manager for ``policy``: it only opens connections the policy allows."""
    manager = _pools.get(policy)
    if manager is None:
        # certifi's CA bundle, as requests uses: HTTPS receivers are verified the same on a host without system CAs.
        manager = PoolManager(num_pools=POOLS_KEPT, maxsize=CONNECTIONS_PER_HOST, retries=False,
                              cert_reqs="CERT_REQUIRED", ca_certs=certifi.where())
        manager.pool_classes_by_scheme = {
            "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": _guarded(HTTPConnection, policy)}),
            "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,),
                          {"ConnectionCls": _guarded(HTTPSConnection, policy)}),
        }
        _pools[policy] = manager
    return manager


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
    _inflight.sockets = []
    watchdog = deadlines.watch.call_at(deadline, _cut, _inflight.sockets)
    try:
        return _post(url, body, headers, policy, timeout, max_bytes, started, deadline)
    finally:
        deadlines.watch.cancel(watchdog)
        _inflight.sockets = None


def _post(url, body, headers, policy, timeout, max_bytes, started, deadline) -> WebhookResponse:
    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    def failed(kind: str, exc: Exception, detail: str | None = None) -> WebhookResponse:
        # The library's text may quote the URL (and a token in it): only the exception types are logged.
        logger.info("webhook.failed kind=%s request_id=%s causes=%s", kind, headers.get("Request-ID"),
                    ",".join(type(cause).__name__ for cause in _causes(exc)))
        return WebhookResponse(0, elapsed_ms(), failure=describe(kind, url, timeout=timeout, detail=detail))

    try:
        response = get_pool_manager(policy).urlopen(
            "POST", url, body=body, headers=headers, redirect=False, retries=False, timeout=Timeout(total=timeout),
            preload_content=False,
        )
    except (HTTPError, OSError, ValueError) as exc:  # ValueError: a URL or header http.client refuses
        if time.monotonic() >= deadline or _timed_out(exc):  # past the deadline: the watchdog cut the receiver
            return failed("timeout", exc)
        kind = failure_kind(exc)
        blocked = next((cause for cause in _causes(exc) if isinstance(cause, BlockedConnection)), None)
        return failed(kind, exc, detail=blocked.explanation if blocked is not None else None)

    try:
        content = _read_capped(response, max_bytes, deadline)
    finally:
        # A body read to its end has already handed the connection back for reuse; one cut short closes it.
        response.close()
        response.release_conn()
    redirect = None
    if 300 <= response.status <= 399:
        redirect = describe("redirect", url, status=response.status, location=response.headers.get("Location"))
    return WebhookResponse(
        status_code=response.status,
        duration_ms=elapsed_ms(),
        body=_decode(content, _charset(response.headers.get("Content-Type"))),
        headers=dict(response.headers),
        failure=redirect,
    )


def _timed_out(exc: BaseException) -> bool:
    # urllib3's NewConnectionError subclasses ConnectTimeoutError: a refused connection is not a timeout.
    return isinstance(exc, (ConnectTimeoutError, ReadTimeoutError)) and not isinstance(exc, NewConnectionError)


def failure_kind(exc: BaseException) -> str:
    """Name what kept a request from getting an answer: blocked, dns, tls, refused, reset, timeout or other."""
    causes = _causes(exc)

    def found(*types) -> bool:
        return any(isinstance(cause, types) for cause in causes)

    if found(BlockedConnection):
        return "blocked"
    if found(UnresolvedConnection, NameResolutionError, socket.gaierror):
        return "dns"
    if found(ssl.SSLError, SSLError):
        return "tls"
    if found(ConnectionRefusedError):
        return "refused"
    if found(ConnectionResetError, ConnectionAbortedError, BrokenPipeError, ProtocolError):
        return "reset"
    if found(TimeoutError):
        return "timeout"
    return "other"


def _causes(exc: BaseException) -> list[BaseException]:
    """Return ``exc`` and every exception it wraps (urllib3 nests them in args, reason and causes)."""
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
    except LookupError:
        return content.decode("utf-8", errors="replace")


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    message = Message()
    message["Content-Type"] = content_type
    return message.get_param("charset")


def _read_capped(response: BaseHTTPResponse, max_bytes: int, deadline: float) -> bytes:
    content = bytearray()
    try:
        while len(content) < max_bytes and time.monotonic() < deadline:
            chunk = response.read(8192)
            if not chunk:
                break
            content += chunk
    except (HTTPError, OSError) as exc:
        # The status line and headers arrived; a body cut short by the receiver or by the
        # deadline is still worth showing, so keep what was read. Common and harmless: one line.
        logger.info("webhook.body_cut_short read=%s reason=%s", len(content), exc.__class__.__name__)
    return bytes(content[:max_bytes])
