"""A hostile receiver: reads each request, answers 200 with a chunked body, then sends trailer lines without end.

Each connection gets a thread of its own that stops when the client hangs up (Hookline's header cap ends the
attempt), when ``stop()`` is called, or after ``MAX_SECONDS`` per connection, so it is bounded whatever the client.
"""

from __future__ import annotations

import socket
import threading
import time

MAX_SECONDS = 30.0
HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
TRAILER = b"X-Trailer: " + b"t" * 100 + b"\r\n"


class EndlessTrailersServer:
    """Listen on 127.0.0.1:<port>; ``accepted`` counts connections, ``sent`` the bytes of trailers sent."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.sent = 0
        self._stopping = threading.Event()

    def start(self) -> "EndlessTrailersServer":
        threading.Thread(target=self._accept, name="trailers-server", daemon=True).start()
        return self

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        started = time.monotonic()
        try:
            connection.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                request += chunk
            connection.sendall(HEAD)
            burst = TRAILER * 64
            while not self._stopping.is_set() and time.monotonic() - started < MAX_SECONDS:
                connection.sendall(burst)
                self.sent += len(burst)
        except OSError:
            pass
        finally:
            connection.close()

    def stop(self) -> None:
        self._stopping.set()
        self.listener.close()
