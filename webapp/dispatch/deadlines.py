"""One thread per process that calls each registered callback at its deadline.

A delivery has two deadlines (the HTTP watchdog that cuts a trickling receiver, and RQ's job time limit);
a ``threading.Timer`` each would start two threads per delivery, which at hundreds of deliveries a second
is a large share of a worker's CPU. ``call_at`` costs a heap push instead.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time

from rq.timeouts import TimerDeathPenalty

logger = logging.getLogger(__name__)


class DeadlineWatch:
    def __init__(self):
        self._wake = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._callbacks: dict[int, tuple] = {}
        self._tokens = itertools.count(1)
        self._pid = None

    def call_at(self, deadline: float, callback, *args) -> int:
        """Call ``callback(*args)`` once ``time.monotonic()`` passes ``deadline`` unless cancelled; return a token."""
        with self._wake:
            if self._pid != os.getpid():  # first use in this process (or after a fork): start the thread
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="deadline-watch", daemon=True).start()
            token = next(self._tokens)
            self._callbacks[token] = (callback, args)
            heapq.heappush(self._heap, (deadline, token))
            if self._heap[0][1] == token:
                self._wake.notify()
            return token

    def cancel(self, token: int) -> bool:
        """Cancel a callback; return True if it had not been called (and now never will be)."""
        with self._wake:
            return self._callbacks.pop(token, None) is not None

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    if self._heap and self._heap[0][1] not in self._callbacks:
                        heapq.heappop(self._heap)  # cancelled: drop it without waiting for its deadline
                        continue
                    self._wake.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                _, token = heapq.heappop(self._heap)
                due = self._callbacks.pop(token, None)
            if due is not None:
                callback, args = due
                try:
                    callback(*args)
                except Exception:  # noqa: BLE001 - one failing callback must not stop every other deadline
                    logger.exception("deadline callback failed")


watch = DeadlineWatch()


class SharedTimerDeathPenalty(TimerDeathPenalty):
    """RQ's thread-safe job time limit, timed by the process's one deadline thread instead of a Timer per job."""

    def setup_death_penalty(self):
        if self._timeout > 0:
            self._token = watch.call_at(time.monotonic() + self._timeout, self.handle_death_penalty)

    def cancel_death_penalty(self):
        if self._timeout > 0:
            watch.cancel(self._token)
