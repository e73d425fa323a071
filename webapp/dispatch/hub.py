"""One thread per worker process that runs the batches of every slot, their transfers on one libcurl multi handle.

Why: under a backlog nearly every delivery runs in a batch (``batches.py``), and a batch per slot thread meant
32 threads taking turns at the GIL around every POST and every Redis reply. Measured on the benchmark's
machine, a process at 32 slots spent about half its CPU in the kernel handing the GIL over, and a delivery
cost 0.9-1.3 ms of CPU against 0.6 ms in a lone slot. Here a slot whose job leads a batch hands the batch to
the hub (with the job's own delivery before it, when deliveries of its app are waiting) and waits (asleep on an
event until the job's time limit, costing nothing); the hub runs each as a greenlet on its one
thread, and where the batch's delivery would block on ``curl.perform()``, it adds the transfer to the multi
handle and switches to the next greenlet that can go on. One thread runs the Python of every batch, so nothing
contends for the GIL, and one ``epoll`` wake-up serves every transfer that became ready together.

Under a backlog the leader's own delivery runs there too: sent from 256 slot threads (each after RQ's bookkeeping
for its job), they took the GIL from the hub so often that, at 256 slots and a receiver answering in 100 ms, the
slots used half as much CPU as the hub and the hub waited on the GIL after each of its Redis round trips. A job
alone sends its own from its slot, beside the other slots': on the hub its blocking SQL and Redis calls would
wait behind every batch's (a fan-out's released deliveries arrived 30-50 ms later at p99).

What stays as it was: the batch's code, its deliveries (``job.perform()`` as RQ runs them), the app's cap
(a batch still runs one delivery at a time, inside its leader's slot), ``post_webhook``'s contract (the same
easy-handle options, callbacks and failure kinds; a test runs the hostile-receiver suite through the hub), and
the leader's slot thread, which RQ still sees running its job until the batch is over.

The greenlets switch only where a transfer waits (``perform``): SQL and Redis calls run to completion on the
hub's thread, as they did on the slot's, so no lock or session is ever held across a switch. A batch runs in a
copy of its slot's context (its slot, its stopping event) with an app context and database session of its own
(``HooklineWorker._lead_apart``): a batch cancelled by its job's time limit may still be finishing a
delivery when the slot closes its own session. The cost of one thread for all: a call that blocks (a row lock,
Redis retrying) holds every batch of the process meanwhile; PostgreSQL connects give up after 5 s. libcurl
declaring the multi handle unusable fails the transfers in flight (as "other") and a fresh one takes over.

Connections: the multi handle keeps up to ``max_connections`` idle keep-alive connections for all batches
(``CONNECTIONS_PER_THREAD`` per slot, as the slots' own handles do), each closed after ``IDLE_SECONDS`` idle.
"""

from __future__ import annotations

import collections
import contextvars
import logging
import os
import selectors
import socket
import threading
import time

import greenlet
import pycurl

from .http import CONNECTIONS_PER_THREAD, Transfers, current_transfers, new_handle

logger = logging.getLogger(__name__)

# A slot waiting on the hub sleeps until its job's time limit (RQ raises the limit into the thread, which only
# sees it once it runs again), then wakes this often; without a limit, this often from the start. Waking every
# half second, 256 waiting slots took the GIL 512 times a second from the hub: in a process delivering to a
# receiver that answers in 100 ms, they used as much CPU as the deliveries.
WAIT_SLICE = 0.5
TIME_LIMIT_MARGIN = 0.05  # seconds past the time limit a waiting slot wakes: RQ's timer has raised it by then
SPARE_HANDLES = 64  # easy handles kept for the next batches (each keeps its options; connections live in the multi)


class _Work:
    """A callable handed to the hub by a slot thread, and what it returned or raised."""

    __slots__ = ("fn", "context", "done", "result", "error")

    def __init__(self, fn, context: contextvars.Context):
        self.fn, self.context = fn, context
        self.done = threading.Event()
        self.result = None
        self.error: BaseException | None = None


class TransferHub(Transfers):
    """Run callables as greenlets on one thread; their ``post_webhook`` transfers share one multi handle."""

    def __init__(self, max_connections: int = CONNECTIONS_PER_THREAD * 64):
        self.max_connections = max_connections
        self._inbox: collections.deque[_Work] = collections.deque()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._multi: pycurl.CurlMulti | None = None
        self._deadline: float | None = None  # libcurl's timer (M_TIMERFUNCTION), in time.monotonic()
        self._watched: dict[int, int] = {}  # fd -> selector events, as libcurl asked (M_SOCKETFUNCTION)
        self._waiting: dict[pycurl.Curl, greenlet.greenlet] = {}  # transfers in flight, and who waits on each
        self._handles: dict[greenlet.greenlet, pycurl.Curl] = {}  # each running greenlet's easy handle
        self._spare: list[pycurl.Curl] = []
        self._main: greenlet.greenlet | None = None
        self.running = 0  # callables started and not yet over

    # -- the slot threads' side --------------------------------------------------------------------------
    def run(self, fn, cancel: threading.Event | None = None, time_limit_at: float | None = None):
        """Run ``fn()`` on the hub, in a copy of the caller's context; wait for it and return or raise its outcome.

        An exception raised into the waiting thread (RQ's job time limit, due at ``time_limit_at`` on
        ``time.monotonic()``'s clock, if known) sets ``cancel`` (which ``fn`` is to watch) and is raised once the
        thread wakes; ``fn`` ends on the hub by itself.
        """
        work = _Work(fn, contextvars.copy_context())
        self._start()
        self._inbox.append(work)
        self._wake()
        try:
            # Asleep until the time limit, then in slices: an exception raised into this thread gets through.
            first = WAIT_SLICE if time_limit_at is None else max(WAIT_SLICE, time_limit_at - time.monotonic())
            if not work.done.wait(first + TIME_LIMIT_MARGIN):
                while not work.done.wait(WAIT_SLICE):
                    pass
        except BaseException:
            if cancel is not None:
                cancel.set()
            raise
        if work.error is not None:
            raise work.error
        return work.result

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._loop, name="transfer-hub", daemon=True)
                thread.start()
                self._thread = thread

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except BlockingIOError:
            pass  # a wake-up is already pending

    # -- the greenlets' side (``Transfers``, used by ``post_webhook``) -----------------------------------
    def handle(self) -> pycurl.Curl:
        current = greenlet.getcurrent()
        curl = self._handles.get(current)
        if curl is None:
            curl = self._handles[current] = self._spare.pop() if self._spare else new_handle()
        return curl

    def perform(self, curl: pycurl.Curl) -> None:
        self._waiting[curl] = greenlet.getcurrent()
        try:
            self._multi.add_handle(curl)
        except pycurl.error:
            del self._waiting[curl]
            raise  # post_webhook reports it as any failed attempt
        error = self._main.switch()  # the loop switches back once the transfer is over
        if error is not None:
            raise pycurl.error(*error)

    # -- the hub's thread ---------------------------------------------------------------------------------
    def _loop(self) -> None:
        self._main = greenlet.getcurrent()
        self._new_multi()
        while True:
            try:
                self._turn()
            except Exception:  # noqa: BLE001 - the hub must outlive any one fault; each batch has its own error path
                logger.exception("hub.loop_error")
                time.sleep(0.01)

    def _turn(self) -> None:
        while self._inbox:
            self._begin(self._inbox.popleft())
        timeout = None
        if self._deadline is not None:
            timeout = max(0.0, self._deadline - time.monotonic())
        for key, mask in self._selector.select(timeout):
            if key.fileobj is self._wake_r:
                try:
                    while self._wake_r.recv(4096):
                        pass
                except BlockingIOError:
                    pass
                continue
            flags = ((pycurl.CSELECT_IN if mask & selectors.EVENT_READ else 0)
                     | (pycurl.CSELECT_OUT if mask & selectors.EVENT_WRITE else 0))
            self._act(key.fd, flags)
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self._deadline = None
            self._act(pycurl.SOCKET_TIMEOUT, 0)
        self._collect()

    def _begin(self, work: _Work) -> None:
        self.running += 1
        child = greenlet.greenlet(self._body, parent=self._main)
        child.gr_context = work.context
        child.switch(work)  # runs until its first transfer waits, or to its end

    def _body(self, work: _Work) -> None:
        try:
            current_transfers.set(self)
            work.result = work.fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting slot thread, which raises it
            work.error = exc
        finally:
            curl = self._handles.pop(greenlet.getcurrent(), None)
            if curl is not None:
                if len(self._spare) < SPARE_HANDLES:
                    self._spare.append(curl)
                else:
                    curl.close()
            self.running -= 1
            work.done.set()

    def _new_multi(self) -> None:
        multi = self._multi = pycurl.CurlMulti()
        multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
        multi.setopt(pycurl.M_MAXCONNECTS, self.max_connections)

    def _act(self, fd: int, flags: int) -> None:
        try:
            self._multi.socket_action(fd, flags)
        except pycurl.error as exc:  # the multi handle is unusable (libcurl says so once, then on every call)
            self._replace_multi(exc)

    def _replace_multi(self, exc: pycurl.error) -> None:
        """Fail every transfer in flight (each greenlet sees its attempt fail) and start a fresh multi handle."""
        logger.error("hub.multi_failed code=%s in_flight=%s", exc.args[0] if exc.args else None, len(self._waiting))
        broken, waiting = self._multi, self._waiting
        self._waiting = {}
        for curl in waiting:
            try:
                broken.remove_handle(curl)
            except pycurl.error:
                pass
        for fd in list(self._watched):
            self._on_socket(pycurl.POLL_REMOVE, fd, None, None)  # never raises: the recovery goes on
        self._deadline = None
        self._new_multi()
        _abandoned.append(broken)  # its connections are closed with the process, not mid-flight here
        for waiter in waiting.values():
            waiter.switch((pycurl.E_ABORTED_BY_CALLBACK, "the transfer hub's multi handle failed"))  # "other"

    def _collect(self) -> None:
        """Resume the greenlet of each transfer that is over."""
        while True:
            queued, ok, failed = self._multi.info_read()
            finished = [(curl, None) for curl in ok] + [(curl, (code, message)) for curl, code, message in failed]
            for curl, error in finished:
                try:
                    self._multi.remove_handle(curl)
                except pycurl.error:
                    pass  # the waiter is resumed all the same
                waiter = self._waiting.pop(curl, None)
                if waiter is not None:
                    waiter.switch(error)  # runs until its next transfer waits, or to its end
            if not queued:
                return

    def _on_timer(self, timeout_ms: int) -> None:
        self._deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000

    def _on_socket(self, what: int, fd: int, _multi, _data) -> None:
        # A callback that raises leaves libcurl's multi handle unusable for good: it never raises.
        try:
            self._watch(what, fd)
        except Exception:  # noqa: BLE001 - logged; the transfer on that socket times out at its deadline
            logger.exception("hub.socket_callback_failed fd=%s", fd)

    def _watch(self, what: int, fd: int) -> None:
        if what == pycurl.POLL_REMOVE:
            if self._watched.pop(fd, None) is not None:
                try:
                    self._selector.unregister(fd)
                except (KeyError, ValueError, OSError):
                    pass
            return
        events = ((selectors.EVENT_READ if what & pycurl.POLL_IN else 0)
                  | (selectors.EVENT_WRITE if what & pycurl.POLL_OUT else 0))
        if not events:  # POLL_NONE: known, nothing to wait for yet
            return self._watch(pycurl.POLL_REMOVE, fd)
        if fd in self._watched:
            try:
                self._selector.modify(fd, events)
            except (KeyError, OSError):  # the fd was closed and reused without a REMOVE: watch it afresh
                try:
                    self._selector.unregister(fd)
                except (KeyError, ValueError, OSError):
                    pass
                self._selector.register(fd, events)
        else:
            try:
                self._selector.register(fd, events)
            except KeyError:  # still registered from a socket libcurl closed without a REMOVE
                self._selector.modify(fd, events)
        self._watched[fd] = events


_hub: TransferHub | None = None
_hub_lock = threading.Lock()


def transfer_hub(max_connections: int) -> TransferHub:
    """Return this process's hub, made at its first use with room for ``max_connections`` kept connections (its
    thread starts with the first batch).

    One, not one per core: a second hub thread measured no faster (the two took turns at the GIL again).
    """
    global _hub
    if _hub is None:
        with _hub_lock:
            if _hub is None:
                _hub = TransferHub(max_connections)
    return _hub


_abandoned: list = []  # multi handles never cleaned up: a broken one, a forked child's copy of its parent's


def _forget_after_fork() -> None:
    global _hub
    if _hub is not None:  # its thread does not exist in a forked child; its sockets are the parent's
        _abandoned.append(_hub)
    _hub = None


os.register_at_fork(after_in_child=_forget_after_fork)
