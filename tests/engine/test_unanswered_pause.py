"""An app whose receiver does not answer is tried once a pause, not once per waiting delivery; once it answers, its
backlog flows at once. Real worker process, real sockets."""

import socket
import threading
import time

from sqlalchemy import select

from tests.engine.test_worker_process import running_worker, wait_for
from tests.lifecycle import send
from webapp.apps.internal_apps import register_internal_app
from webapp.core import keys
from webapp.core.extensions import db
from webapp.dispatch.delivery import enqueue_delivery_jobs
from webapp.dispatch.housekeeping import end_pauses
from webapp.dispatch.request_log import SentryAppWebhookRequestsBuffer
from webapp.models import Organization

DELIVERIES = 8


class LateReceiver:
    """A port that refuses connections (bound, not listening) until ``open()``; then answers 200 to each POST."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.webhook_ids: list[str] = []

    def open(self) -> None:
        self.socket.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            data = b""
            while True:  # keep-alive: one request after another on the connection
                while b"\r\n\r\n" not in data:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                headers = {name.lower(): value for name, value in
                           (line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:])}
                length = int(headers.get("content-length", "0"))
                while len(data) < length:
                    data += connection.recv(65536)
                data = data[length:]
                self.webhook_ids.append(headers.get("webhook-id", ""))
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def close(self) -> None:
        self.socket.close()


def attempt_times(app, app_id: int) -> list[float]:
    """When (time.time()) each attempt that got no answer was logged, oldest first."""
    from datetime import datetime

    entries = SentryAppWebhookRequestsBuffer(app.extensions["redis"], app_id).get_requests()
    return sorted(datetime.fromisoformat(entry["date"].replace("Z", "+00:00")).timestamp()
                  for entry in entries if entry["response_code"] == 0)


def test_an_app_without_answers_is_tried_once_a_pause_and_its_backlog_flows_once_it_answers(app, settings, pager,
                                                                                           tmp_path):
    receiver = LateReceiver()
    with app.app_context():
        organization = db.session.scalar(select(Organization).where(Organization.slug == "acme"))
        app_id = register_internal_app(organization, "Late", f"http://127.0.0.1:{receiver.port}/hook", ["issue"]).id
        db.session.remove()
    try:
        with running_worker(settings, output=tmp_path / "worker.log", WEBHOOK_TIMEOUT=1, WEBHOOK_UNANSWERED_PAUSE=1,
                            WEBHOOK_RETRY_SCHEDULE="2") as worker:
            wait_for(lambda: app.extensions["redis"].keys("rq:worker:*"), 20)
            ids = send(app, app_id, DELIVERIES)
            wait_for(lambda: attempt_times(app, app_id), 10)
            time.sleep(3.5)
            refused = attempt_times(app, app_id)
            # The first wave is the app's cap (4), let in before anything failed; from then on, with eight
            # deliveries waiting and retries coming due, one attempt a pause: not all of them at once.
            first_wave = [at for at in refused if at - refused[0] < 0.5]
            later = refused[len(first_wave):]
            gaps = [after - before for before, after in zip(first_wave[-1:] + later, later)]
            assert len(first_wave) <= 4 and 2 <= len(later) <= 4, refused
            assert all(gap >= 0.9 for gap in gaps), gaps
            receiver.open()
            opened = time.monotonic()
            try:
                wait_for(lambda: set(ids) <= set(receiver.webhook_ids), 15)
            except AssertionError:
                raise AssertionError(f"received {len(set(receiver.webhook_ids) & set(ids))} of {len(ids)}; log: {(tmp_path / 'worker.log').read_text()[-3000:]}")
            # The first answer ends the pause for good: the backlog goes out together, not one a second.
            assert time.monotonic() - opened < 4, receiver.webhook_ids
            assert worker.poll() is None
    finally:
        receiver.close()
    connection = app.extensions["redis"]
    assert connection.zscore(keys.app_rate_limit_allowed(app_id), keys.PAUSE_MEMBER) is None


def test_an_ended_pause_lets_the_apps_oldest_waiting_delivery_in(app, pager):
    """The housekeeper's step on its own: the pause member leaves the app's place, the oldest waiting one takes it."""
    connection = app.extensions["redis"]
    allowed, waiting = keys.app_rate_limit_allowed(pager), keys.app_rate_limit_waiting(pager)
    app.config["WEBHOOK_APP_CONCURRENCY"] = 1
    with app.app_context():  # the first takes the place, two wait
        ids = enqueue_delivery_jobs([(pager, "issue.created", {"issue": {"id": str(i)}}, None, None) for i in range(3)])
    connection.delete(f"rq:queue:{keys.WEBHOOK_QUEUE}")
    connection.zrem(allowed, ids[0])
    connection.zadd(allowed, {keys.PAUSE_MEMBER: time.time()})
    connection.zadd(keys.PAUSED_APPS, {pager: time.time() + 60})
    assert end_pauses(connection) == []  # not yet over
    assert connection.zrange(allowed, 0, -1) == [keys.PAUSE_MEMBER.encode()]
    connection.zadd(keys.PAUSED_APPS, {pager: time.time() - 1})
    assert end_pauses(connection) == [pager]
    # One of the two waiting (queued in the same instant: RQ takes the first by id) is let in and queued.
    let_in = [member.decode() for member in connection.zrange(allowed, 0, -1)]
    still_waiting = [member.decode() for member in connection.zrange(waiting, 0, -1)]
    assert len(let_in) == 1 and sorted(let_in + still_waiting) == sorted(ids[1:])
    assert connection.lrange(f"rq:queue:{keys.WEBHOOK_QUEUE}", 0, -1) == [let_in[0].encode()]
    assert connection.zcard(keys.PAUSED_APPS) == 0


def test_the_housekeeper_wakes_when_a_pause_ends_not_at_its_next_pass(app, pager):
    """A pause ends on time: the housekeeper, between its passes a second apart, wakes for the first pause due and
    lets the app's next delivery in then (waking a pass later, a 1 s pause was up to 2 s)."""
    import threading

    from webapp.dispatch.housekeeping import Housekeeper

    connection = app.extensions["redis"]
    keeper = Housekeeper(app, "test-keeper", threading.Event())
    next_pass = time.monotonic() + 1.0
    assert 0.9 < keeper._wait(next_pass) <= 1.0  # nothing paused: the next pass
    connection.zadd(keys.PAUSED_APPS, {pager: time.time() + 0.3})
    assert 0.2 < keeper._wait(next_pass) <= 0.3  # the pause ends first
    connection.zadd(keys.PAUSED_APPS, {pager: time.time() - 5})
    assert keeper._wait(next_pass) > 0  # overdue (being ended): a short wait, never a busy loop
    app.config["WEBHOOK_APP_CONCURRENCY"] = 1
    with app.app_context():
        enqueue_delivery_jobs([(pager, "issue.created", {"issue": {"id": "1"}}, None, None)])
    allowed = keys.app_rate_limit_allowed(pager)
    connection.delete(allowed)
    connection.zadd(allowed, {keys.PAUSE_MEMBER: time.time()})
    keeper._end_pauses()
    assert connection.zcard(keys.PAUSED_APPS) == 0
    assert connection.zscore(allowed, keys.PAUSE_MEMBER) is None
