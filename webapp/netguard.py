"""Decide which webhook URLs and destination addresses Hookline may send to (SSRF guard)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class InvalidWebhookURL(ValueError):
    """The URL cannot be used as a webhook; the message says why, for the person who typed it."""


class BlockedDestination(OSError):
    """A connection was about to reach an address that webhooks may not reach."""


class UnresolvableHost(BlockedDestination):
    """The webhook's host name does not resolve to any address."""


@dataclass(frozen=True)
class AddressPolicy:
    """Which destination addresses are allowed: public ones, plus what the settings open up."""

    allow_private: bool = False
    allowed_networks: tuple = ()

    @classmethod
    def from_config(cls, config) -> AddressPolicy:
        return cls(config["WEBHOOK_ALLOW_PRIVATE"], tuple(config["WEBHOOK_ALLOWED_NETWORKS"]))

    def is_allowed(self, address: str | IPAddress) -> bool:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        if self.allow_private or any(ip in network for network in self.allowed_networks):
            return True
        # is_global is False for loopback, private, link-local, shared (CGNAT), reserved and
        # unspecified ranges; multicast needs its own test because some of it counts as global.
        # An IPv4 address carried inside IPv6 (mapped, 6to4, Teredo, NAT64) is judged as that IPv4.
        return all(candidate.is_global and not candidate.is_multicast for candidate in _with_embedded_ipv4(ip))

    def check_resolved(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` and return its addresses; raise BlockedDestination if any is not allowed."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise UnresolvableHost(f"could not resolve {host}: {exc.strerror}") from None
        except UnicodeError:  # a host name IDNA cannot encode
            raise UnresolvableHost(f"{host!r} is not a valid host name") from None
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        for address in addresses:
            if not self.is_allowed(address.split("%", 1)[0]):
                raise BlockedDestination(f"{host} resolves to {address}, which webhooks may not reach")
        return addresses


NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _with_embedded_ipv4(ip: IPAddress) -> list[IPAddress]:
    """Return ``ip`` and every IPv4 address an IPv6 address carries inside it."""
    found = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            found.append(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            found.append(ip.sixtofour)
        if ip.teredo is not None:
            found.extend(ip.teredo)
        if ip in NAT64:
            found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def validate_webhook_url(url: str, policy: AddressPolicy) -> str:
    """Return ``url`` stripped if Hookline may send webhooks to it, else raise InvalidWebhookURL.

    1. The scheme is http or https and there is a host.
    2. There are no credentials in the URL (they would be logged and shown).
    3. Every address the host resolves to is allowed by ``policy``.
    """
    url = (url or "").strip()
    if len(url) > 2048:
        raise InvalidWebhookURL("The URL is too long (at most 2048 characters).")
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidWebhookURL("This is not a valid URL.") from None
    if parts.scheme not in {"http", "https"}:
        raise InvalidWebhookURL("The URL must start with http:// or https://.")
    if not parts.hostname:
        raise InvalidWebhookURL("The URL has no host name.")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookURL("The URL must not contain a user name or password.")
    try:
        policy.check_resolved(parts.hostname, port)
    except UnresolvableHost:
        raise InvalidWebhookURL(f"The host {parts.hostname} could not be found (DNS lookup failed).") from None
    except BlockedDestination as exc:
        raise InvalidWebhookURL(f"The URL may not point at a private or reserved address ({exc}).") from None
    return url

