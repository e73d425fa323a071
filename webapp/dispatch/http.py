"""The one way Hookline sends HTTP to a receiver: time-boxed, size-capped, no redirects, address-checked."""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass, field

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, Timeout
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import NewConnectionError

from . import deadlines
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


@dataclass
class WebhookResponse:
    """What one attempt produced. ``status_code`` is 0 when no HTTP response arrived."""

    status_code: int
    duration_ms: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None

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
                raise NewConnectionError(self, str(exc)) from None  # a DNS failure: retried like a timeout
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


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connection pools only open connections ``policy`` allows."""

    def __init__(self, policy: AddressPolicy, **kwargs):
        self.policy = policy
        super().__init__(max_retries=0, **kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        http_pool = type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": _guarded(HTTPConnection, self.policy)})
        https_pool = type(
            "GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": _guarded(HTTPSConnection, self.policy)}
        )
        self.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}


_sessions: dict[AddressPolicy, requests.Session] = {}


def get_session(policy: AddressPolicy) -> requests.Session:
    """Return this process's session for ``policy`` (connections are reused between deliveries)."""
    session = _sessions.get(policy)
    if session is None:
        session = requests.Session()
        session.trust_env = False  # no proxies or .netrc credentials picked up from the environment
        adapter = GuardedAdapter(policy, pool_maxsize=32)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        _sessions[policy] = session
    return session


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

    try:
        response = get_session(policy).post(
            url, data=body, headers=headers, timeout=Timeout(total=timeout), allow_redirects=False, stream=True
        )
    except requests.Timeout:
        return WebhookResponse(0, elapsed_ms(), error=f"Timed out after {timeout:g}s")
    except requests.ConnectionError as exc:
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        if isinstance(reason, BlockedConnection):
            return WebhookResponse(0, elapsed_ms(), error=f"Blocked: {reason.args[-1]}")
        if time.monotonic() >= deadline:  # the watchdog cut a receiver that answered too slowly
            return WebhookResponse(0, elapsed_ms(), error=f"Timed out after {timeout:g}s")
        return WebhookResponse(0, elapsed_ms(), error=f"Connection failed: {_short_reason(exc)}")
    except requests.RequestException as exc:
        return WebhookResponse(0, elapsed_ms(), error=f"Request failed: {_short_reason(exc)}")

    with response:
        content = _read_capped(response, max_bytes, deadline)
        return WebhookResponse(
            status_code=response.status_code,
            duration_ms=elapsed_ms(),
            body=_decode(content, response.encoding),
            headers=dict(response.headers),
        )


def _decode(content: bytes, encoding: str | None) -> str:
    """Decode with the receiver's declared charset, or UTF-8 when it declares one Python does not know."""
    try:
        return content.decode(encoding or "utf-8", errors="replace")
    except LookupError:
        return content.decode("utf-8", errors="replace")


def _read_capped(response: requests.Response, max_bytes: int, deadline: float) -> bytes:
    content = bytearray()
    try:
        for chunk in response.iter_content(chunk_size=8192):
            content += chunk
            if len(content) >= max_bytes or time.monotonic() >= deadline:
                break
    except requests.RequestException as exc:
        # The status line and headers arrived; a body cut short by the receiver or by the
        # deadline is still worth showing, so keep what was read. Common and harmless: one line.
        logger.info("webhook.body_cut_short read=%s reason=%s", len(content), exc.__class__.__name__)
    return bytes(content[:max_bytes])


def _short_reason(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:297] + "..."
