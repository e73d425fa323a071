"""The transfer hub: callables from many slot threads run as greenlets on one thread, their transfers overlapping."""

import contextvars
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from webapp.core.netguard import AddressPolicy
from webapp.dispatch.http import post_webhook
from webapp.dispatch.hub import TransferHub

DELAY = 0.3


class SlowHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(DELAY)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def hub():
    return TransferHub(32)


def test_transfers_of_many_slots_overlap_on_the_hubs_one_thread(hub, slow_url):
    """Eight slots each hand over two deliveries in a row to a receiver taking 0.3 s: 0.6 s in all, not 4.8 s."""
    seen = []

    def batch():
        for _ in range(2):
            response = post_webhook(slow_url, b"{}", {}, policy=AddressPolicy(allow_private=True), timeout=5,
                                    max_bytes=100)
            seen.append((threading.current_thread().name, response.status_code))
        return "done"

    results = []
    slots = [threading.Thread(target=lambda: results.append(hub.run(batch))) for _ in range(8)]
    started = time.monotonic()
    for slot in slots:
        slot.start()
    for slot in slots:
        slot.join()
    elapsed = time.monotonic() - started
    assert results == ["done"] * 8
    assert seen == [("transfer-hub", 200)] * 16
    assert elapsed < 2 * DELAY + 1.0, elapsed  # one after another it would be 16 x 0.3 s
    assert hub.running == 0


def test_what_the_callable_raises_is_raised_in_the_waiting_thread(hub):
    def broken():
        raise LookupError("no such app")

    with pytest.raises(LookupError, match="no such app"):
        hub.run(broken)
    assert hub.run(lambda: 7) == 7  # the hub goes on


def test_the_callable_runs_in_a_copy_of_the_callers_context(hub):
    """A batch sees its slot's app context and slot; what it sets stays its own."""
    var = contextvars.ContextVar("slot", default=None)
    var.set("slot-3")

    def batch():
        seen = var.get()
        var.set("changed on the hub")
        return seen

    assert hub.run(batch) == "slot-3"
    assert var.get() == "slot-3"


def test_an_exception_raised_into_the_waiting_slot_cancels_the_batch(hub):
    """RQ's job time limit raises into the slot's thread: the batch is told to stop, the slot does not wait."""
    import ctypes

    cancel = threading.Event()
    release = threading.Event()
    raised = []

    def batch():  # as a batch checks its stopping event between deliveries (sleeping holds the hub: a test only)
        while not cancel.is_set() and not release.is_set():
            time.sleep(0.01)
        return "stopped"

    def slot():
        try:
            hub.run(batch, cancel)
        except TimeoutError:
            raised.append(True)

    thread = threading.Thread(target=slot)
    thread.start()
    time.sleep(0.2)
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(TimeoutError))
    thread.join(5)
    release.set()
    assert raised == [True] and cancel.is_set()


def test_a_multi_handle_that_breaks_fails_the_transfers_in_flight_and_is_replaced(hub, slow_url):
    """libcurl reports a multi handle unusable for good: its transfers fail in plain words, later ones go through."""
    import pycurl

    class Breaking:  # the hub's multi handle, whose next socket_action fails as a broken one does
        def __init__(self, multi):
            self.multi = multi

        def socket_action(self, *args):
            raise pycurl.error(11, "broken")

        def __getattr__(self, name):
            return getattr(self.multi, name)

    def post():
        return post_webhook(slow_url, b"{}", {}, policy=AddressPolicy(allow_private=True), timeout=5, max_bytes=100)

    outcome = []
    slot = threading.Thread(target=lambda: outcome.append(hub.run(post)))
    slot.start()
    time.sleep(DELAY / 2)  # the request is out, the answer not yet
    hub._multi = Breaking(hub._multi)
    slot.join(5)
    assert outcome and outcome[0].status_code == 0 and outcome[0].failure.kind == "other"
    assert hub.run(post).status_code == 200  # on a fresh multi handle
    assert hub.running == 0


def test_a_waiting_slot_sleeps_until_its_jobs_time_limit_and_sees_it_then(hub, monkeypatch):
    """Waiting slots do not wake every half second (256 of them took the GIL 512 times a second from the hub):
    a slot sleeps until its job's time limit, and RQ's limit, raised into it then, gets through at once."""
    from rq.timeouts import JobTimeoutException

    from webapp.dispatch import hub as hub_module
    from webapp.dispatch.deadlines import SharedTimerDeathPenalty

    waits = []

    class CountingEvent(threading.Event):
        def wait(self, timeout=None):
            if timeout is not None:  # (a thread's start waits on an Event without one)
                waits.append(timeout)
            return super().wait(timeout)

    monkeypatch.setattr(hub_module.threading, "Event", CountingEvent)
    cancel = threading.Event()
    release = threading.Event()

    def batch():
        while not cancel.is_set() and not release.is_set():
            time.sleep(0.01)
        return "stopped"

    outcome = {}

    def slot():
        started = time.monotonic()
        try:
            with SharedTimerDeathPenalty(1, JobTimeoutException):
                hub.run(batch, cancel, time_limit_at=started + 1)
        except JobTimeoutException:
            outcome["raised_after"] = time.monotonic() - started

    thread = threading.Thread(target=slot)
    thread.start()
    thread.join(5)
    release.set()
    assert cancel.is_set()
    assert "raised_after" in outcome, "RQ's time limit never reached the waiting slot"
    assert 1.0 <= outcome["raised_after"] < 1.0 + hub_module.WAIT_SLICE / 2  # at the limit, not a slice after
    assert len(waits) == 1 and waits[0] >= 0.9  # one sleep, until the limit
