"""A receiver that hangs: accepts connections, reads what is sent, and never answers (one thread, selectors)."""

from __future__ import annotations

import selectors
import socket
import threading


class HungServer:
    """Listen on 127.0.0.1:<port> in a daemon thread; ``stop()`` closes every socket. ``accepted`` counts connections."""

    def __init__(self, port: int = 0):
        self.listener = socket.create_server(("127.0.0.1", port), backlog=1024)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.listener, selectors.EVENT_READ)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hung-server", daemon=True)

    def start(self) -> "HungServer":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stopping.is_set():
            for key, _ in self._selector.select(timeout=0.2):
                sock = key.fileobj
                if sock is self.listener:
                    try:
                        connection, _ = self.listener.accept()
                    except (BlockingIOError, OSError):
                        continue
                    connection.setblocking(False)
                    self._selector.register(connection, selectors.EVENT_READ)
                    self.accepted += 1
                    continue
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:  # the client gave up (its deadline cut the socket)
                    self._selector.unregister(sock)
                    sock.close()
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()
        self._selector.close()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)
