"""Decide which webhook URLs and destination addresses Hookline may send to (SSRF guard)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .names import has_control_characters

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class InvalidWebhookURL(ValueError):
    """The URL cannot be used as a webhook; the message says why, for the person who typed it."""


class BlockedDestination(OSError):
    """A connection was about to reach an address that webhooks may not reach."""


class UnresolvableHost(BlockedDestination):
    """The webhook's host name does not resolve to any address."""


class InvalidHostName(UnresolvableHost):
    """The webhook's host name is not one any resolver could look up (IDNA cannot encode it)."""


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
        return is_public(ip)

    def check_resolved(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` and return its addresses; raise BlockedDestination if any is not allowed."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise UnresolvableHost(f"could not resolve {host}: {exc.strerror}") from None
        except UnicodeError:  # a host name IDNA cannot encode
            raise InvalidHostName(f"{host!r} is not a valid host name") from None
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        for address in addresses:
            if not self.is_allowed(address.split("%", 1)[0]):
                raise BlockedDestination(f"{host} resolves to {address}, which webhooks may not reach")
        return addresses


# Deny by default: an IPv6 address must be global unicast (2000::/3) and counted global by ``ipaddress``,
# and outside the ranges below, which that check misses on some Python versions or which carry IPv4.
GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
REFUSED_IPV6 = tuple(ipaddress.ip_network(network) for network in (
    "2001::/32",      # Teredo: a tunnel to the IPv4 client inside it
    "2001:db8::/32",  # documentation
    "3fff::/20",      # documentation (RFC 9637)
))
# Translation prefixes a resolver may hand out for an IPv4-only host (getaddrinfo with AI_V4MAPPED, DNS64):
# judged as the IPv4 address in their last 32 bits.
IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Other IPv4-in-IPv6 forms, refused outright (they are outside 2000::/3) and unwrapped only to be thorough:
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")       # deprecated
SIIT = ipaddress.ip_network("::ffff:0:0:0/96")        # IPv4-translated (stateless translation)
LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")  # local-use NAT64 (RFC 8215), read as a /96


def is_public(ip: IPAddress) -> bool:
    """Say whether ``ip`` and every IPv4 address carried inside it are global unicast addresses."""
    if isinstance(ip, ipaddress.IPv4Address):
        return _is_public_ipv4(ip)
    carried = embedded_ipv4(ip)
    if carried and not all(_is_public_ipv4(address) for address in carried):
        return False
    if ip in IPV4_MAPPED or ip in NAT64:
        return True  # stands for the (public) IPv4 address it carries
    return (ip in GLOBAL_UNICAST and ip.is_global and not ip.is_multicast and not ip.is_reserved
            and not any(ip in network for network in REFUSED_IPV6))


def _is_public_ipv4(ip: ipaddress.IPv4Address) -> bool:
    # is_global is False for loopback, private, link-local, shared (CGNAT), benchmarking, documentation,
    # reserved and unspecified ranges; multicast needs its own test because some of it counts as global.
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Return every IPv4 address that ``ip`` carries, in any of the IPv4-in-IPv6 forms."""
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in IPV4_MAPPED or ip in SIIT or ip in NAT64 or ip in LOCAL_NAT64:
        return [low32]
    if ip in IPV4_COMPATIBLE:
        return [low32] if int(ip) > 1 else []  # :: and ::1 carry nothing; both are refused anyway
    if ip.sixtofour is not None:  # 2002:AABB:CCDD::/48
        return [ip.sixtofour]
    if ip.teredo is not None:  # 2001:0:<server>::<client XOR ffffffff>; ipaddress undoes the XOR
        return list(ip.teredo)
    return []


DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class OwnEndpoints:
    """Where this Hookline answers, each with its port: a webhook URL there would deliver into its own ingestion,
    and every delivery would come back as an event that sends another.

    Host and port, not the address alone: receivers may share Hookline's host (loopback in development) on
    another port.
    """

    names: dict = field(default_factory=dict)  # (host name, port) -> what it is, for the message
    addresses: dict = field(default_factory=dict)  # (IP address, port) -> what it is

    @classmethod
    def of(cls, base_url: str, environ: Mapping | None = None) -> OwnEndpoints:
        """Collect them from BASE_URL and, while a request is served, from its WSGI environ.

        1. BASE_URL's host and port.
        2. The host and port the request was sent to (``Host``), and the server's SERVER_NAME and SERVER_PORT.
        3. The local address of the request's socket, which Werkzeug's and gunicorn's servers put in the environ
           (SERVER_NAME may be a bind address such as 0.0.0.0, or under gunicorn the Host header).
        """
        names = {_host_and_port(base_url): "Hookline's BASE_URL"}
        addresses = {}
        if environ:
            scheme = environ.get("wsgi.url_scheme", "http")
            names.setdefault(_host_and_port(f"{scheme}://{environ.get('HTTP_HOST', '')}"),
                             "the host this request was sent to")
            names.setdefault(_host_and_port(f"{scheme}://{environ.get('SERVER_NAME', '')}:"
                                            f"{environ.get('SERVER_PORT', '')}"), "where this Hookline server listens")
            local = _local_address(environ.get("werkzeug.socket") or environ.get("gunicorn.socket"))
            if local is not None:
                addresses[local] = "the address this request arrived on"
        names.pop(None, None)
        return cls(names, addresses)


def _host_and_port(url: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:  # e.g. a Host header that is no host[:port]: nothing to compare with
        return None
    return (_canonical_host(parts.hostname), port) if parts.hostname and port else None


def _local_address(connection) -> tuple[IPAddress, int] | None:
    """Return the local end (address, port) of a request's TCP connection, or None (a Unix socket, or gone)."""
    try:
        local = connection.getsockname() if connection is not None else None
    except OSError:
        return None
    address = _ip_address(local[0]) if isinstance(local, tuple) else None  # a Unix socket's name is a path
    return (address, local[1]) if address is not None else None


def _with_port(host, port: int) -> str:
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def _canonical_host(host: str) -> str:
    """Spell a host one way: lower case, no final dot, an IP address in its short form."""
    host = host.lower().rstrip(".")
    address = _ip_address(host)
    return str(address) if address is not None else host


def _ip_address(text: str) -> IPAddress | None:
    """Return the address (an IPv4-mapped IPv6 one as IPv4, without a zone), or None if ``text`` is no address."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def _points_at_hookline(reason: str) -> InvalidWebhookURL:
    return InvalidWebhookURL(f"This URL points at Hookline itself ({reason}); deliveries to it would come back "
                             f"as events and loop. Use your receiver's URL.")


def validate_webhook_url(url: str, policy: AddressPolicy, own: OwnEndpoints | None = None,
                         warnings: list[str] | None = None) -> str:
    """Return ``url`` stripped if Hookline may send webhooks to it, else raise InvalidWebhookURL.

    1. The scheme is http or https and there is a host.
    2. There are no credentials in the URL (they would be logged and shown).
    3. The host and port are not one of Hookline's ``own`` names.
    4. Every address the host resolves to is allowed by ``policy``, and none is one of Hookline's ``own``
       addresses on that port. A host that does not resolve from here now (offline, split DNS, not created
       yet) is accepted with a message in ``warnings``: the connect-time guard checks every send.
    """
    own = own or OwnEndpoints()
    url = (url or "").strip()
    if len(url) > 2048:
        raise InvalidWebhookURL("The URL is too long (at most 2048 characters).")
    if has_control_characters(url):  # urlsplit drops tabs and line breaks, so the saved URL would keep them
        raise InvalidWebhookURL("The URL must not contain line breaks, tabs or other control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme, 80)
    except ValueError:
        raise InvalidWebhookURL("This is not a valid URL.") from None
    if parts.scheme not in {"http", "https"}:
        raise InvalidWebhookURL("The URL must start with http:// or https://.")
    if not parts.hostname:
        raise InvalidWebhookURL("The URL has no host name.")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookURL("The URL must not contain a user name or password.")
    host = _canonical_host(parts.hostname)
    if (host, port) in own.names:
        raise _points_at_hookline(f"{_with_port(host, port)} is {own.names[host, port]}")
    try:
        addresses = policy.check_resolved(parts.hostname, port)
    except InvalidHostName:
        raise InvalidWebhookURL(f"{parts.hostname} is not a valid host name.") from None
    except UnresolvableHost:
        if warnings is not None:
            warnings.append(f"The host {parts.hostname} does not resolve from this server right now (DNS lookup "
                            "failed). The URL is saved; each delivery looks it up again and is refused if it "
                            "then points at a private or reserved address.")
        return url
    except BlockedDestination as exc:
        raise InvalidWebhookURL(f"The URL may not point at a private or reserved address ({exc}). To allow it, "
                                "the server's administrator adds its network to WEBHOOK_ALLOWED_NETWORKS.") from None
    for address in filter(None, map(_ip_address, addresses)):
        if (address, port) in own.addresses:
            raise _points_at_hookline(f"{host} resolves to {address}, and {_with_port(address, port)} is "
                                      f"{own.addresses[address, port]}")
    return url

