import ipaddress
import socket

import pytest

from webapp.core.netguard import AddressPolicy, InvalidWebhookURL, OwnEndpoints, validate_webhook_url

STRICT = AddressPolicy()


@pytest.mark.parametrize(
    "url",
    ["http://93.184.216.34/hook", "https://93.184.216.34:8443/a?b=c", "http://[2606:2800:220:1:248:1893:25c8:1946]/x"],
)
def test_public_addresses_are_accepted(url):
    assert validate_webhook_url(f"  {url} ", STRICT) == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://93.184.216.34/hook", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("93.184.216.34/hook", "http:// or https://"),
        ("http:///nohost", "no host"),
        ("http://user:pw@93.184.216.34/", "user name or password"),
        ("http://user@93.184.216.34/", "user name or password"),
        ("http://127.0.0.1:8000/", "private or reserved"),
        ("http://localhost/", "private or reserved"),
        ("http://2130706433/", "private or reserved"),  # 127.0.0.1 written as a number
        ("http://0.0.0.0/", "private or reserved"),
        ("http://10.1.2.3/", "private or reserved"),
        ("http://172.16.0.1/", "private or reserved"),
        ("http://192.168.1.1/", "private or reserved"),
        ("http://169.254.169.254/latest/meta-data/", "private or reserved"),  # cloud metadata
        ("http://100.64.0.1/", "private or reserved"),
        ("http://224.0.0.1/", "private or reserved"),
        ("http://240.0.0.1/", "private or reserved"),
        ("http://[::1]/", "private or reserved"),
        ("http://[::ffff:127.0.0.1]/", "private or reserved"),
        ("http://[fe80::1]/", "private or reserved"),
        ("http://[fd00::1]/", "private or reserved"),
        ("http://[64:ff9b::a9fe:a9fe]/", "private or reserved"),  # NAT64 form of 169.254.169.254
        ("http://[2002:7f00:1::]/", "private or reserved"),  # 6to4 form of 127.0.0.1
        ("http://ü..com/", "is not a valid host name"),  # a host name IDNA cannot encode
        ("http://93.184.216.34:99999/", "not a valid URL"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url, message):
    with pytest.raises(InvalidWebhookURL, match=message):
        validate_webhook_url(url, STRICT)


def test_allow_private_opens_loopback():
    assert validate_webhook_url("http://127.0.0.1:9/", AddressPolicy(allow_private=True))


def test_allow_list_opens_only_its_networks():
    policy = AddressPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))
    assert validate_webhook_url("http://127.0.0.1:9/", policy)
    with pytest.raises(InvalidWebhookURL):
        validate_webhook_url("http://127.0.0.2:9/", policy)
    with pytest.raises(InvalidWebhookURL):
        validate_webhook_url("http://10.0.0.1/", policy)


# Loopback (127.0.0.1) and the metadata address (169.254.169.254) in every IPv4-in-IPv6 form.
@pytest.mark.parametrize("address", [
    "::ffff:127.0.0.1",                        # IPv4-mapped
    "::ffff:169.254.169.254",
    "::127.0.0.1",                             # IPv4-compatible (deprecated)
    "::8.8.8.8",                               # ... refused even when the IPv4 is public
    "::ffff:0:127.0.0.1",                      # SIIT (IPv4-translated)
    "::ffff:0:8.8.8.8",
    "2002:7f00:1::1",                          # 6to4
    "2002:a9fe:a9fe::",
    "2001:0:4136:e378:8000:63bf:80ff:fffe",    # Teredo, client 127.0.0.1 (stored XOR ffffffff)
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",    # Teredo, client 8.8.8.8: tunnels are refused
    "64:ff9b::7f00:1",                         # NAT64 well-known prefix
    "64:ff9b::a9fe:a9fe",
    "64:ff9b:1::7f00:1",                       # local-use NAT64
    "64:ff9b:1::808:808",
])
def test_ipv4_inside_ipv6_is_refused_unless_a_public_translation(address):
    assert not STRICT.is_allowed(address)


@pytest.mark.parametrize("address", [
    "fec0::1",            # site-local (deprecated, still routed inside some networks)
    "ff0e::1",            # global-scope multicast
    "ff02::1",
    "2001:db8::1",        # documentation
    "3fff::1",            # documentation (RFC 9637)
    "100::1",             # discard-only
    "4000::1",            # outside global unicast (reserved)
    "5f00::1",
    "::",
    "::1",
    "fc00::1",
    "fe80::1",
    "192.0.2.1",          # IPv4 documentation
    "198.18.0.1",         # benchmarking
    "255.255.255.255",
    "239.255.255.250",
])
def test_non_global_addresses_are_refused(address):
    assert not STRICT.is_allowed(address)


@pytest.mark.parametrize("address", [
    "8.8.8.8",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",     # what getaddrinfo gives with AI_V4MAPPED for a public IPv4 host
    "64:ff9b::808:808",   # what DNS64 gives an IPv6-only host for a public IPv4 host
    "2002:808:808::1",    # 6to4 of a public IPv4
])
def test_global_unicast_is_allowed(address):
    assert STRICT.is_allowed(address)


@pytest.mark.parametrize("url", [
    "http://[::127.0.0.1]/", "http://[::ffff:0:127.0.0.1]/", "http://[64:ff9b:1::7f00:1]/", "http://[fec0::1]/",
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
])
def test_webhook_urls_with_wrapped_loopback_are_refused(url):
    with pytest.raises(InvalidWebhookURL, match="private or reserved"):
        validate_webhook_url(url, STRICT)


@pytest.mark.parametrize("address", ["::127.0.0.1", "64:ff9b:1::7f00:1", "fec0::1", "10.0.0.1"])
def test_allow_private_still_opens_everything(address):
    assert AddressPolicy(allow_private=True).is_allowed(address)


LOOP = "This URL points at Hookline itself"


@pytest.mark.parametrize("url", ["http://hookline.test/api/1/store/", "HTTP://Hookline.Test.:80/x"])
def test_a_url_at_base_url_is_refused_before_any_dns_lookup(url):
    own = OwnEndpoints.of("http://hookline.test")  # does not resolve: the name alone decides
    with pytest.raises(InvalidWebhookURL, match=r"itself \(hookline\.test:80 is Hookline's BASE_URL\); deliveries"):
        validate_webhook_url(url, STRICT, own)


def test_base_url_host_on_another_port_and_other_hosts_are_accepted():
    own = OwnEndpoints.of("http://93.184.216.34:5000")
    assert validate_webhook_url("http://93.184.216.34:5001/hook", STRICT, own)
    assert validate_webhook_url("https://93.184.216.34/hook", STRICT, own)
    assert validate_webhook_url("http://93.184.216.35:5000/hook", STRICT, own)
    with pytest.raises(InvalidWebhookURL, match=LOOP):
        validate_webhook_url("http://93.184.216.34:5000/hook", STRICT, own)


@pytest.fixture
def served_connection():
    """The server's end of a real loopback TCP connection, as a WSGI server hands it to the app."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        with socket.create_connection(listener.getsockname()) as client:
            accepted, _ = listener.accept()
            with accepted:
                yield accepted


@pytest.mark.parametrize("server", ["werkzeug", "gunicorn"])
def test_a_host_resolving_to_the_address_a_request_arrived_on_is_refused_on_that_port_only(served_connection, server):
    port = served_connection.getsockname()[1]
    own = OwnEndpoints.of("http://hookline.test", {f"{server}.socket": served_connection, "HTTP_HOST": "hookline.test"})
    policy = AddressPolicy(allow_private=True)  # receivers on loopback, as in development
    reason = rf"\(localhost resolves to 127\.0\.0\.1, and 127\.0\.0\.1:{port} is the address this request arrived on\)"
    with pytest.raises(InvalidWebhookURL, match=reason):
        validate_webhook_url(f"http://localhost:{port}/api/1/envelope/", policy, own)
    assert validate_webhook_url(f"http://localhost:{port + 1}/hook", policy, own)


def test_the_host_a_request_was_sent_to_is_refused_and_a_malformed_one_ignored():
    own = OwnEndpoints.of("http://hookline.test", {"HTTP_HOST": "hooks.example.com:8080", "wsgi.url_scheme": "http"})
    with pytest.raises(InvalidWebhookURL, match=r"hooks\.example\.com:8080 is the host this request was sent to"):
        validate_webhook_url("http://hooks.example.com:8080/api/1/store/", STRICT, own)
    assert OwnEndpoints.of("http://hookline.test", {"HTTP_HOST": "not a host:port"}).names == {
        ("hookline.test", 80): "Hookline's BASE_URL"}


def test_an_unresolvable_host_is_accepted_with_a_warning(served_connection):
    """Offline or split-DNS users can save a receiver's URL; the connect-time guard decides at each send."""
    own = OwnEndpoints.of("http://hookline.test", {"werkzeug.socket": served_connection})
    warnings = []
    assert validate_webhook_url("http://does-not-exist.invalid/hook", STRICT, own, warnings) == \
        "http://does-not-exist.invalid/hook"
    assert len(warnings) == 1 and "does-not-exist.invalid does not resolve from this server right now" in warnings[0]


