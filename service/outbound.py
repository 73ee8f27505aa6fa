"""Outbound requests to addresses an admin typed in (webhooks): public internet only.

A webhook URL could otherwise point the service at itself or its neighbours: loopback,
`localhost`, the cloud metadata address (169.254.169.254), the private network, or the same
written as `2130706433`, `0x7f.1` or `[::ffff:127.0.0.1]`, and the delivery log would tell
open ports from closed ones. So a host is resolved once, every address it resolves to must
be public (or inside a network the operator named in WEBHOOK_ALLOWED_NETWORKS), and the
connection goes to that checked address, never to a second lookup of the name: a DNS answer
that changes between the check and the connection (DNS rebinding) reaches nothing new.

No Flask here: the worker delivers webhooks, the API checks a URL when an admin adds it.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class BlockedAddressError(ValueError):
    """The URL's host is, or resolves to, an address outbound requests may not reach."""


def allowed_networks(values: Iterable[str]) -> list[IPNetwork]:
    """The operator's WEBHOOK_ALLOWED_NETWORKS as networks (ValueError names a bad one)."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"WEBHOOK_ALLOWED_NETWORKS: {value!r} is not a network") from None
    return networks


def _why_refused(address: IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (
            address.teredo[1] if address.teredo else None)
        if embedded is not None:
            return _why_refused(embedded)
    for check, what in ((address.is_loopback, "a loopback"), (address.is_link_local,
                        "a link-local (cloud metadata)"), (address.is_private, "a private"),
                        (address.is_multicast, "a multicast"),
                        (address.is_unspecified, "an unspecified"),
                        (address.is_reserved, "a reserved")):
        if check:
            return what
    if not address.is_global:
        return "a non-public"
    return None


def check_address(address: IPAddress, allowed: Iterable[IPNetwork] = ()) -> None:
    """BlockedAddressError unless ``address`` is public or inside an allowed network."""
    if any(address.version == net.version and address in net for net in allowed):
        return
    why = _why_refused(address)
    if why is not None:
        raise BlockedAddressError(f"{address} is {why} address")


def resolve(host: str, port: int, allowed: Iterable[IPNetwork] = ()) -> list[IPAddress]:
    """Resolve ``host`` once and check every address it gives; the checked addresses.

    Any refused address refuses the host (a name that also resolves to 127.0.0.1 is not
    public, whichever address a client would pick)."""
    allowed = list(allowed)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise BlockedAddressError(f"{host} does not resolve ({error})") from None
    addresses = list(dict.fromkeys(
        ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos))
    if not addresses:
        raise BlockedAddressError(f"{host} does not resolve")
    for address in addresses:
        check_address(address, allowed)
    return addresses


def check_url(url: str, allowed: Iterable[IPNetwork] = ()) -> list[IPAddress]:
    """The checked addresses an http(s) ``url`` may be sent to; BlockedAddressError if none."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockedAddressError("only http and https URLs with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise BlockedAddressError("the port is not a number from 0 to 65535") from None
    return resolve(parts.hostname, port, allowed)


def _connect(addresses: list[IPAddress], port: int, timeout: float | None) -> socket.socket:
    """A connection to the first checked address that answers (never a new lookup)."""
    error: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((str(address), port), timeout)
        except OSError as exc:
            error = exc
    assert error is not None
    raise error


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to checked addresses, with the URL's host in the Host header."""

    def __init__(self, host: str, port: int, addresses: list[IPAddress],
                 timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.addresses = addresses

    def connect(self) -> None:
        self.sock = _connect(self.addresses, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to checked addresses; the certificate is verified for the URL's host name."""

    def __init__(self, host: str, port: int, addresses: list[IPAddress],
                 timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.addresses = addresses

    def connect(self) -> None:
        sock = _connect(self.addresses, self.port, self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class DeliveryError(RuntimeError):
    """The receiver answered, but not with a 2xx (redirects included: never followed)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"HTTP {code} {reason}")
        self.code = code


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float,
         allowed: Iterable[IPNetwork] = ()) -> int:
    """POST ``body`` to ``url`` through the checked address; the status if 2xx, else raise
    (BlockedAddressError before connecting, DeliveryError, OSError)."""
    addresses = check_url(url, allowed)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    connection_class = _PinnedHTTPSConnection if parts.scheme == "https" else \
        _PinnedHTTPConnection
    connection = connection_class(host, port, addresses, timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        if not 200 <= response.status < 300:
            raise DeliveryError(response.status, response.reason)
        return int(response.status)
    finally:
        connection.close()
