import ipaddress

import pytest

from webapp.netguard import AddressPolicy, InvalidWebhookURL, validate_webhook_url

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
        ("http://does-not-exist.invalid/", "could not be found"),
        ("http://[64:ff9b::a9fe:a9fe]/", "private or reserved"),  # NAT64 form of 169.254.169.254
        ("http://[2002:7f00:1::]/", "private or reserved"),  # 6to4 form of 127.0.0.1
        ("http://ü..com/", "could not be found"),  # a host name IDNA cannot encode
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
