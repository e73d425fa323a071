"""Receivers that break HTTP on purpose, on real loopback sockets: each attempt ends as a failure with a plain
reason, within its time limit, and never as a success."""

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from webapp.core.netguard import AddressPolicy
from webapp.dispatch import http as webhook_http
from webapp.dispatch.http import MAX_HEADER_BYTES, post_webhook

from .hub_mode import client_mode  # noqa: F401 - every test here runs on a thread's handle and on the hub

OPEN = AddressPolicy(allow_private=True)
LIMIT = 1.0  # the attempt's time limit in these tests
ON_TIME = LIMIT + 0.5  # what an attempt may take at most, scheduling included
ROOT = Path(__file__).resolve().parents[2]


class ScriptedReceiver:
    """Accept connections on 127.0.0.1; read each request, then run ``behave(send, stopped)`` for the answer.

    ``send(bytes)`` writes to the connection (False once it is gone); ``stopped()`` is true once the test ended,
    so every endless behaviour is bounded.
    """

    def __init__(self, behave):
        self.behave = behave
        self.done = threading.Event()
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.port = self.server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection):
        def send(data: bytes) -> bool:
            try:
                connection.sendall(data)
                return True
            except OSError:
                return False

        try:
            connection.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                request += chunk
            self.behave(send, self.done.is_set)
        except OSError:
            pass
        finally:
            connection.close()

    def stop(self):
        self.done.set()
        self.server.close()


@pytest.fixture
def receiver():
    started = []

    def start(behave):
        server = ScriptedReceiver(behave)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
    webhook_http.close_connections()


def attempt(url):
    started = time.monotonic()
    response = post_webhook(url, b'{"a": 1}', {"Content-Type": "application/json", "Request-ID": "r" * 32},
                            policy=OPEN, timeout=LIMIT, max_bytes=65536)
    return response, time.monotonic() - started


def answer(data: bytes):
    return lambda send, stopped: send(data)


def endless(head: bytes, line: bytes, pause: float = 0.0):
    """Send ``head``, then ``line`` again and again until the client hangs up or the test ends."""
    def behave(send, stopped):
        send(head)
        while not stopped() and send(line):
            if pause:
                time.sleep(pause)
    return behave


def assert_failed(response, elapsed, kind):
    assert response.status_code == 0, response
    assert response.failure.kind == kind, response.failure
    assert elapsed < ON_TIME


def test_two_different_content_lengths_are_an_invalid_answer(receiver):
    server = receiver(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\nokxyz"))
    response, elapsed = attempt(server.url)
    assert_failed(response, elapsed, "invalid")
    assert "not valid HTTP" in response.failure.message


@pytest.mark.parametrize("size", [b"zz", b"-5", b"1x", b"ffffffffffffffffffffff"])
def test_a_bad_chunk_size_is_an_invalid_answer_not_a_success(receiver, size):
    server = receiver(answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\nokokok\r\n0\r\n\r\n"))
    response, elapsed = attempt(server.url)
    assert_failed(response, elapsed, "invalid")


def test_a_body_shorter_than_its_length_is_not_a_success(receiver):
    server = receiver(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"))
    response, elapsed = attempt(server.url)
    assert_failed(response, elapsed, "invalid")
    assert "ended before the length it announced" in response.failure.message


def test_a_flood_of_interim_answers_ends_at_the_header_cap(receiver):
    server = receiver(endless(b"", b"HTTP/1.1 102 Processing\r\n\r\n"))
    response, elapsed = attempt(server.url)
    assert_failed(response, elapsed, "invalid")
    assert f"more than {MAX_HEADER_BYTES // 1024} KB of header lines" in response.failure.message
    assert elapsed < LIMIT  # ended by the cap, not by the clock


def test_endless_trailers_end_at_the_header_cap_not_as_a_success(receiver):
    server = receiver(endless(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n",
                              b"X-Trailer: " + b"t" * 100 + b"\r\n"))
    response, elapsed = attempt(server.url)
    assert_failed(response, elapsed, "invalid")
    assert elapsed < LIMIT


def test_a_huge_header_is_an_invalid_answer(receiver):
    server = receiver(answer(b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * 200_000 + b"\r\nContent-Length: 2\r\n\r\nok"))
    response, elapsed = attempt(server.url)
    assert_failed(response, elapsed, "invalid")


def test_headers_trickled_a_byte_at_a_time_end_at_the_time_limit(receiver):
    server = receiver(endless(b"HTTP/1.1 200 OK\r\n", b"X", pause=0.05))
    response, elapsed = attempt(server.url)
    assert_failed(response, elapsed, "timeout")
    assert elapsed >= LIMIT - 0.05


def test_a_body_trickled_a_byte_at_a_time_ends_at_the_time_limit_not_as_a_success(receiver):
    server = receiver(endless(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", b"x", pause=0.05))
    response, elapsed = attempt(server.url)
    assert_failed(response, elapsed, "timeout")


def test_a_tls_handshake_that_stalls_ends_at_the_time_limit():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:  # accepts (the kernel does), never answers the ClientHello
        response, elapsed = attempt(f"https://127.0.0.1:{server.getsockname()[1]}/hook")
    finally:
        server.close()
    assert_failed(response, elapsed, "timeout")


# Slow DNS: a resolver of the test's own, in a network namespace whose /etc/resolv.conf points at it. The
# attempt runs in a child process inside that namespace.
DNS_CHILD = textwrap.dedent("""
    import json, socket, sys, threading, time
    from webapp.dispatch.http import post_webhook
    from tests.dispatch.hub_mode import maybe_via_hub
    post_webhook = maybe_via_hub(post_webhook)
    from webapp.core.netguard import AddressPolicy

    delay, private_answer = float(sys.argv[1]), sys.argv[2] == "private"
    resolver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    resolver.bind(("127.0.0.1", 53))

    def answer(query):  # NXDOMAIN, or (private_answer) one A record 10.0.0.7 for the question asked
        if not private_answer:
            return query[:2] + bytes([0x81, 0x83]) + query[4:]
        record = bytes([0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 7])
        return query[:2] + bytes([0x81, 0x80]) + query[4:6] + bytes([0, 1, 0, 0, 0, 0]) + query[12:] + record

    def serve():  # answer every query after ``delay`` s, or never (delay < 0)
        while True:
            query, peer = resolver.recvfrom(512)
            if delay >= 0:
                def reply(query=query, peer=peer):
                    time.sleep(delay)
                    resolver.sendto(answer(query), peer)
                threading.Thread(target=reply, daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    started = time.monotonic()
    response = post_webhook("http://receiver.slow-dns.test/hook", b"{}", {}, policy=AddressPolicy(allow_private=not private_answer),
                            timeout=1.0, max_bytes=100)
    print(json.dumps({"elapsed": time.monotonic() - started, "code": response.status_code,
                      "kind": response.failure.kind if response.failure else None,
                      "message": response.failure.message if response.failure else None}))
""")


def _in_namespace_with_resolver(tmp_path, delay: float, answer: str = "nxdomain") -> dict:
    import json

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to give the child a resolver of its own")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:10 attempts:1\n")
    script = tmp_path / "child.py"
    script.write_text(DNS_CHILD)
    command = (f"ip link set lo up && mount --bind {resolv} /etc/resolv.conf && "
               f"exec {sys.executable} {script} {delay} {answer}")
    done = subprocess.run(["unshare", "--net", "--mount", "sh", "-c", command], capture_output=True, text=True,
                          timeout=30, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0 and "unshare failed" in done.stderr:
        pytest.skip(f"no network namespace here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("delay", [4.0, -1], ids=["answers-after-4s", "never-answers"])
def test_slow_dns_is_bounded_by_the_time_limit(tmp_path, delay):
    result = _in_namespace_with_resolver(tmp_path, delay)
    assert result["code"] == 0 and result["kind"] == "timeout"
    assert result["elapsed"] < ON_TIME  # before: 4 s and 10 s with a 1 s limit


def test_a_host_that_resolves_to_a_private_address_at_send_time_is_blocked_on_the_connect(tmp_path):
    """DNS rebinding: the URL was saved while it resolved to a public address; now it answers 10.0.0.7."""
    result = _in_namespace_with_resolver(tmp_path, 0.0, "private")
    assert result["code"] == 0 and result["kind"] == "blocked"
    assert "receiver.slow-dns.test resolves to 10.0.0.7, which webhooks may not reach" in result["message"]


# 1,000 receiver hosts (250 ports on each of four loopback addresses) from a process limited to 256 open files:
# the connection cache stays bounded and every delivery succeeds.
MANY_HOSTS_RECEIVER = textwrap.dedent("""
    import resource, selectors, socket, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
    selector = selectors.DefaultSelector()
    ports = []
    for address in ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"):
        for index in range(250):
            server = socket.socket()
            server.bind((address, 0))
            server.listen(64)
            server.setblocking(False)
            selector.register(server, selectors.EVENT_READ, "listen")
            ports.append(f"{address}:{server.getsockname()[1]}")
    print(" ".join(ports), flush=True)
    answer = b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok"
    while True:
        for key, _ in selector.select(timeout=30):
            if key.data == "listen":
                connection, _ = key.fileobj.accept()
                connection.setblocking(False)
                selector.register(connection, selectors.EVENT_READ, "read")
                continue
            try:
                data = key.fileobj.recv(65536)
            except OSError:
                data = b""
            if not data:
                selector.unregister(key.fileobj)
                key.fileobj.close()
            elif b"\\r\\n\\r\\n" in data:
                key.fileobj.send(answer)
""")

MANY_HOSTS_CLIENT = textwrap.dedent("""
    import json, os, resource, sys, threading
    from webapp.dispatch.http import post_webhook
    from tests.dispatch.hub_mode import maybe_via_hub
    post_webhook = maybe_via_hub(post_webhook)
    from webapp.core.netguard import AddressPolicy

    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    origins = sys.stdin.read().split()
    codes, most_open = [], [0]
    lock = threading.Lock()

    def deliver(share):
        for origin in share:
            response = post_webhook(f"http://{origin}/hook", b"{}", {}, policy=AddressPolicy(allow_private=True),
                                    timeout=5.0, max_bytes=100)
            with lock:
                codes.append(response.status_code)
                most_open[0] = max(most_open[0], len(os.listdir("/proc/self/fd")))

    threads = [threading.Thread(target=deliver, args=(origins[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"codes": sorted(set(codes)), "count": len(codes), "most_open": most_open[0]}))
""")


def test_a_thousand_receiver_hosts_stay_within_a_low_open_file_limit(tmp_path):
    import json

    (tmp_path / "receiver.py").write_text(MANY_HOSTS_RECEIVER)
    (tmp_path / "client.py").write_text(MANY_HOSTS_CLIENT)
    receiver = subprocess.Popen([sys.executable, str(tmp_path / "receiver.py")], stdout=subprocess.PIPE, text=True)
    try:
        origins = receiver.stdout.readline()
        done = subprocess.run([sys.executable, str(tmp_path / "client.py")], input=origins, capture_output=True,
                              text=True, timeout=120, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        receiver.kill()
        receiver.wait()
        receiver.stdout.close()
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["codes"], result["count"]) == ([200], 1000)
    # 8 threads x FILES_PER_SLOT, plus the interpreter's own files: far below 256.
    assert result["most_open"] <= 8 * webhook_http.FILES_PER_SLOT + 20
