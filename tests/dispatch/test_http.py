"""The one outbound HTTP function, against a real local HTTP server."""

import threading
import time

import pytest
from werkzeug import Response

from webapp.core.netguard import AddressPolicy
from webapp.dispatch.http import post_webhook

from .hub_mode import client_mode  # noqa: F401 - every test here runs on a thread's handle and on the hub

OPEN = AddressPolicy(allow_private=True)


def post(url, policy=OPEN, timeout=1.0, max_bytes=65536):
    return post_webhook(url, b"{}", {"Content-Type": "application/json"}, policy=policy, timeout=timeout, max_bytes=max_bytes)


def test_success_returns_status_body_and_headers(httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("fine", status=202, headers={"Sentry-Hook-Error": "e1"})
    response = post(httpserver.url_for("/hook"))
    assert (response.status_code, response.body, response.failure) == (202, "fine", None)
    assert response.headers["Sentry-Hook-Error"] == "e1"
    assert response.is_success


def test_redirects_are_not_followed(httpserver):
    httpserver.expect_request("/hook").respond_with_response(Response(status=302, headers={"Location": "/elsewhere"}))
    httpserver.expect_request("/elsewhere").respond_with_data("followed")
    response = post(httpserver.url_for("/hook"))
    assert response.status_code == 302
    assert [request.path for request, _ in httpserver.log] == ["/hook"]


def test_a_hanging_receiver_costs_at_most_the_timeout(httpserver):
    answered = threading.Event()

    def hang(request):
        time.sleep(2)
        answered.set()
        return Response("late")

    httpserver.expect_request("/hook").respond_with_handler(hang)
    started = time.monotonic()
    response = post(httpserver.url_for("/hook"), timeout=0.5)
    assert time.monotonic() - started < 1.5
    assert response.status_code == 0
    assert response.failure.kind == "timeout" and response.failure.message.startswith("Timed out after 0.5 s")
    answered.wait(5)  # let the receiver finish so its late answer does not land in the next test's log


def test_connection_refused_is_code_0():
    response = post("http://127.0.0.1:9/hook")
    assert response.status_code == 0
    assert response.failure.kind == "refused"


def test_only_max_bytes_of_the_response_are_read(httpserver):
    httpserver.expect_request("/hook").respond_with_data("x" * 500_000, status=500)
    response = post(httpserver.url_for("/hook"), max_bytes=1000)
    assert response.status_code == 500
    assert len(response.body) == 1000


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_private_destinations_are_blocked_at_connect_time(httpserver, host):
    """Even a URL that passed registration is checked again when connecting, by resolved address."""
    httpserver.expect_request("/hook").respond_with_data("should not arrive")
    url = httpserver.url_for("/hook").replace("localhost", host).replace("127.0.0.1", host)
    response = post(url, policy=AddressPolicy())
    assert response.status_code == 0
    assert response.failure.kind == "blocked"
    assert "may not reach" in response.failure.message
    assert len(httpserver.log) == 0


def test_a_receiver_trickling_bytes_is_cut_at_the_deadline():
    """Per-read timeouts would let a slow drip hold the worker; the watchdog ends the attempt on time."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    stop = threading.Event()

    def drip():
        connection, _ = server.accept()
        connection.recv(65536)
        for byte in b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n":
            if stop.wait(0.1):
                break
            try:
                connection.sendall(bytes([byte]))
            except OSError:
                break
        connection.close()

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    started = time.monotonic()
    response = post(f"http://127.0.0.1:{port}/hook", timeout=0.5)
    elapsed = time.monotonic() - started
    stop.set()
    thread.join(5)
    server.close()
    assert elapsed < 2.5  # without the watchdog the drip takes 4.5 s
    assert response.status_code == 0 and response.failure.kind == "timeout"


def test_a_host_that_does_not_resolve_at_send_time_is_a_retried_timeout():
    from webapp.dispatch.outcomes import classify

    response = post("http://does-not-exist.invalid/hook")
    assert response.status_code == 0 and response.failure.kind == "dns"
    outcome = classify(response)
    assert (outcome.kind, outcome.retry) == ("timeout", True)


def test_an_unknown_charset_falls_back_to_utf8(httpserver):
    httpserver.expect_request("/hook").respond_with_response(
        Response("fin ✓".encode(), status=500, headers={"Content-Type": "text/plain; charset=utf8mb4"}))
    response = post(httpserver.url_for("/hook"))
    assert (response.status_code, response.body) == (500, "fin ✓")


def test_an_https_receiver_that_does_not_speak_tls_is_a_tls_failure():
    """HTTPS deliveries are verified (certifi's bundle); a handshake that fails is named, not a crash."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def answer_in_plain_http():
        connection, _ = server.accept()
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        connection.close()

    thread = threading.Thread(target=answer_in_plain_http, daemon=True)
    thread.start()
    response = post(f"https://127.0.0.1:{port}/hook")
    thread.join(5)
    server.close()
    assert response.status_code == 0 and response.failure.kind == "tls"


def test_a_proxy_in_the_environment_is_never_used(httpserver, monkeypatch):
    """A worker's http_proxy (set for pip or apt) must not carry webhooks: they go straight to the receiver."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    httpserver.expect_request("/hook").respond_with_data("direct")
    response = post(httpserver.url_for("/hook"))
    assert (response.status_code, response.body) == (200, "direct")


def test_only_http_and_https_urls_are_sent():
    response = post("file:///etc/passwd")
    assert response.status_code == 0 and response.failure.kind == "other"
