"""Each way an attempt can fail gets plain words and a hint, from real sockets on 127.0.0.1."""

import socket
import threading

import pytest
from werkzeug import Response

from webapp.core.netguard import AddressPolicy
from webapp.dispatch.http import post_webhook
from webapp.dispatch.outcomes import classify

OPEN = AddressPolicy(allow_private=True)
LIBRARY_WORDS = ("GuardedHTTP", "Max retries", "object at 0x", "urllib3", "Errno", "NewConnectionError")


def post(url, policy=OPEN, timeout=1.0):
    return post_webhook(url, b"{}", {"Content-Type": "application/json", "Request-ID": "f" * 32}, policy=policy,
                        timeout=timeout, max_bytes=65536)


def assert_plain(failure):
    for words in LIBRARY_WORDS:
        assert words not in failure.message and words not in failure.hint


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def listener():
    """A socket listening on 127.0.0.1; ``behaviour`` decides what it does with a connection."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    threads = []

    def serve(behaviour):
        thread = threading.Thread(target=lambda: behaviour(server), daemon=True)
        thread.start()
        threads.append(thread)
        return server.getsockname()[1]

    yield serve
    server.close()
    for thread in threads:
        thread.join(5)


def test_a_refused_connection_asks_whether_the_receiver_listens(closed_port):
    response = post(f"http://127.0.0.1:{closed_port}/hook")
    assert response.status_code == 0 and response.failure.kind == "refused"
    assert response.failure.message == (
        f"Connection refused: nothing accepted the connection on 127.0.0.1 port {closed_port}.")
    assert response.failure.hint == f"Is the receiver running and listening on port {closed_port}?"
    assert_plain(response.failure)
    assert classify(response).kind == "timeout"  # health counting is unchanged


def test_a_host_that_does_not_resolve_is_host_not_found():
    response = post("http://hookline-no-such-host.invalid/hook")
    assert response.failure.kind == "dns"
    assert response.failure.message == (
        "Host not found: hookline-no-such-host.invalid does not resolve to an address (DNS).")
    assert "host name" in response.failure.hint
    assert_plain(response.failure)
    assert classify(response).kind == "timeout"


def test_a_listener_that_never_answers_times_out_after_n_seconds(listener):
    port = listener(lambda server: None)  # the kernel completes the handshake; nobody reads or answers
    response = post(f"http://127.0.0.1:{port}/hook", timeout=0.4)
    assert response.failure.kind == "timeout"
    assert response.failure.message == "Timed out after 0.4 s: 127.0.0.1 did not answer in time."
    assert response.failure.hint.startswith("Answer within 0.4 s")
    assert classify(response).kind == "timeout"


def test_a_redirect_is_not_followed_and_names_its_target(httpserver):
    httpserver.expect_request("/hook").respond_with_response(
        Response("moved", status=302, headers={"Location": "https://new.example/hook"}))
    response = post(httpserver.url_for("/hook"))
    assert response.status_code == 302 and response.body == "moved"
    assert response.failure.kind == "redirect"
    assert response.failure.message == ("Redirect not followed: the receiver answered 302 to https://new.example/hook; "
                                        "webhooks never follow redirects.")
    assert response.failure.hint == "Set the webhook URL to https://new.example/hook."
    assert classify(response).kind == "error"


def test_the_address_guard_says_blocked_destination(httpserver):
    httpserver.expect_request("/hook").respond_with_data("should not arrive")
    response = post(httpserver.url_for("/hook").replace("localhost", "127.0.0.1"), policy=AddressPolicy())
    assert response.failure.kind == "blocked"
    assert response.failure.message == (
        "Blocked destination: 127.0.0.1 resolves to 127.0.0.1, which webhooks may not reach.")
    assert "WEBHOOK_ALLOW_PRIVATE" in response.failure.hint
    assert_plain(response.failure)
    assert (classify(response).kind, classify(response).retry) == ("error", False)


def test_https_to_a_plain_http_port_is_a_tls_error(httpserver):
    httpserver.expect_request("/hook").respond_with_data("plain http")
    url = httpserver.url_for("/hook").replace("http://", "https://").replace("localhost", "127.0.0.1")
    response = post(url)
    assert response.failure.kind == "tls"
    assert response.failure.message == "TLS error: a secure connection to 127.0.0.1 could not be set up."
    assert_plain(response.failure)


def test_a_receiver_that_hangs_up_without_answering_closed_the_connection(listener):
    def hang_up(server):
        connection, _ = server.accept()
        connection.recv(65536)
        connection.close()

    port = listener(hang_up)
    response = post(f"http://127.0.0.1:{port}/hook")
    assert response.failure.kind == "reset"
    assert response.failure.message == "Connection closed: 127.0.0.1 closed the connection without answering."
    assert_plain(response.failure)


def test_http_errors_other_than_redirects_need_no_explanation(httpserver):
    httpserver.expect_request("/hook").respond_with_data("kaput", status=500)
    assert post(httpserver.url_for("/hook")).failure is None
