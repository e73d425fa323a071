"""Keep-alive connections and HTTP/1.1 framing between deliveries, against a raw server on 127.0.0.1 that counts them."""

import socket
import threading

import pytest

from webapp.core.netguard import AddressPolicy
from webapp.dispatch import http as webhook_http
from webapp.dispatch.http import post_webhook

OPEN = AddressPolicy(allow_private=True)


class KeepAliveServer:
    """Answers each request on a connection with ``answers[n]`` (raw bytes) in turn, repeating the last one.

    ``after_answer`` says what to do once an answer is sent: "keep" the connection open for the next request,
    or "close" it.
    """

    def __init__(self, answers, after_answer="keep"):
        self.answers, self.after_answer = answers, after_answer
        self.connections = 0
        self.requests = 0
        self.drop_next = False  # read the next request on any connection, then close it without answering
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.open = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            self.open.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection):
        reader = connection.makefile("rb")
        try:
            while True:
                length = None
                line = reader.readline()
                if not line:
                    return
                while line not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                    line = reader.readline()
                reader.read(length or 0)
                if self.drop_next:
                    self.drop_next = False
                    self.requests += 1
                    connection.close()
                    return
                answer = self.answers[min(self.requests, len(self.answers) - 1)]
                self.requests += 1
                connection.sendall(answer)
                if self.after_answer == "close":
                    connection.close()
                    return
        except OSError:
            return

    def close_idle(self):
        """Close every connection from the server's side, as a receiver's keep-alive timeout does."""
        for connection in self.open:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            connection.close()
        self.open.clear()

    def stop(self):
        self.close_idle()
        self.server.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


@pytest.fixture
def serve():
    servers = []

    def start(answers, after_answer="keep"):
        server = KeepAliveServer(answers, after_answer)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
    webhook_http.close_connections()


def post(url, max_bytes=65536):
    return post_webhook(url, b'{"a": 1}', {"Content-Type": "application/json"}, policy=OPEN, timeout=2.0,
                        max_bytes=max_bytes)


def test_deliveries_to_one_receiver_reuse_one_connection(serve):
    server = serve([OK])
    responses = [post(server.url) for _ in range(5)]
    assert [(r.status_code, r.body) for r in responses] == [(200, "ok")] * 5
    assert (server.requests, server.connections) == (5, 1)


def test_a_connection_the_receiver_closed_while_idle_is_not_reused(serve):
    server = serve([OK])
    assert post(server.url).status_code == 200
    server.close_idle()  # the receiver's keep-alive timeout ran out between deliveries
    response = post(server.url)
    assert (response.status_code, response.failure) == (200, None)
    assert server.connections == 2


def test_a_receiver_that_answers_connection_close_gets_a_new_connection_each_time(serve):
    server = serve([b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"], after_answer="close")
    assert [post(server.url).status_code for _ in range(3)] == [200, 200, 200]
    assert server.connections == 3


def test_a_chunked_answer_is_read_whole_and_the_connection_kept(serve):
    chunked = (b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    server = serve([chunked])
    assert [(r.status_code, r.body) for r in (post(server.url), post(server.url))] == [(202, "hello world")] * 2
    assert server.connections == 1


def test_an_answer_without_a_length_is_read_until_the_receiver_closes(serve):
    server = serve([b"HTTP/1.0 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\nbroken"],
                   after_answer="close")
    response = post(server.url)
    assert (response.status_code, response.body) == (500, "broken")


def test_a_body_cut_at_the_size_cap_closes_the_connection(serve):
    server = serve([b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000, OK])
    response = post(server.url, max_bytes=100)
    assert (response.status_code, len(response.body)) == (500, 100)
    assert post(server.url).status_code == 200  # the rest of the big body is never read as the next answer
    assert server.connections == 2


def test_headers_sent_twice_are_joined_and_folded_lines_kept(serve):
    server = serve([b"HTTP/1.1 429 Too Many Requests\r\nX-Trace: a\r\nx-trace: b\r\nRetry-After: 7\r\n"
                    b"X-Long: first\r\n second\r\nContent-Length: 0\r\n\r\n"])
    response = post(server.url)
    assert response.status_code == 429
    assert response.headers["X-Trace"] == "a, b"
    assert response.headers["Retry-After"] == "7"
    assert response.headers["X-Long"] == "first second"


def test_an_answer_that_is_not_http_is_an_invalid_answer(serve):
    server = serve([b"SSH-2.0-OpenSSH_9.2\r\n"], after_answer="close")
    response = post(server.url)
    assert response.status_code == 0 and response.failure.kind == "invalid"
    assert response.failure.message.startswith("Invalid answer: 127.0.0.1 answered with something that is not valid HTTP")


def test_an_interim_100_continue_is_skipped(serve):
    server = serve([b"HTTP/1.1 100 Continue\r\n\r\n" + OK])
    response = post(server.url)
    assert (response.status_code, response.body) == (200, "ok")


@pytest.fixture
def tls_receiver(tmp_path):
    """An HTTPS receiver on 127.0.0.1 with a self-signed certificate for "localhost"; yields (port, CA file)."""
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []

    def answer(raw):
        connection = raw
        try:
            connection = context.wrap_socket(raw, server_side=True)
            reader = connection.makefile("rb")
            while True:
                line, length = reader.readline(), 0
                if not line:
                    return
                while line not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                    line = reader.readline()
                reader.read(length)
                connection.sendall(OK)
        except (OSError, ssl.SSLError):
            pass
        finally:
            connection.close()

    def serve():
        while True:
            try:
                raw, _ = server.accept()
            except OSError:
                return
            accepted.append(raw)
            threading.Thread(target=answer, args=(raw,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1], cert, accepted
    server.close()
    webhook_http.close_connections()


def test_https_is_verified_against_the_ca_and_the_host_name(tls_receiver, monkeypatch):
    import ssl

    port, cert, accepted = tls_receiver
    # Untrusted: the certificate is self-signed, so certifi's bundle refuses it.
    untrusted = post(f"https://localhost:{port}/hook")
    assert untrusted.status_code == 0 and untrusted.failure.kind == "tls"
    monkeypatch.setattr(webhook_http, "CA_BUNDLE", str(cert))
    webhook_http.close_connections()  # the next attempt's handle trusts the test's certificate
    responses = [post(f"https://localhost:{port}/hook") for _ in range(3)]
    assert [(r.status_code, r.body) for r in responses] == [(200, "ok")] * 3
    assert len(accepted) == 2  # the refused handshake, then one kept-alive connection for the three
    wrong_name = post(f"https://127.0.0.1:{port}/hook")  # trusted certificate, but not for this name
    assert wrong_name.status_code == 0 and wrong_name.failure.kind == "tls"


def test_a_path_with_spaces_and_accents_is_sent_percent_encoded(serve):
    server = serve([OK])
    seen = []
    original = server._serve

    def recording(connection):
        peek = connection.recv(4096, socket.MSG_PEEK)
        seen.append(peek.split(b"\r\n", 1)[0])
        original(connection)

    server._serve = recording
    response = post(f"http://127.0.0.1:{server.port}/hooks/a b/café?x=1 2")
    assert response.status_code == 200
    assert seen == [b"POST /hooks/a%20b/caf%C3%A9?x=1%202 HTTP/1.1"]


def test_an_early_hints_answer_is_skipped_and_never_read_as_the_next_answer(serve):
    server = serve([b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nfirst",
                    b"HTTP/1.1 202 Accepted\r\nContent-Length: 6\r\n\r\nsecond"])
    assert [(r.status_code, r.body) for r in (post(server.url), post(server.url))] == [(201, "first"), (202, "second")]


def test_a_charset_that_cannot_decode_falls_back_to_utf8(serve):
    server = serve([b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain; charset=idna\r\n"
                    b"Content-Length: 4\r\n\r\noops"])
    response = post(server.url)
    assert (response.status_code, response.body) == (500, "oops")


def test_an_answer_cut_off_inside_its_headers_is_a_closed_connection_not_a_success(serve):
    server = serve([b"HTTP/1.1 200 OK\r\nContent-Type: text/pl"], after_answer="close")
    response = post(server.url)
    assert response.status_code == 0 and response.failure.kind == "reset"


def test_a_kept_connection_the_receiver_drops_as_the_request_goes_out_is_tried_once_more(serve):
    """The receiver's keep-alive ran out just as the next delivery was sent: it gets a new connection, not a
    "closed" failure counted against the app."""
    server = serve([OK])
    assert post(server.url).status_code == 200
    server.drop_next = True  # the kept connection: read the next request, close without answering
    response = post(server.url)
    assert (response.status_code, response.failure) == (200, None)
    assert (server.requests, server.connections) == (3, 2)


def test_a_new_connection_closed_without_an_answer_is_not_tried_again(serve):
    server = serve([OK])
    server.drop_next = True
    response = post(server.url)
    assert response.status_code == 0 and response.failure.kind == "reset"
    assert server.requests == 1
