"""Which addresses the collector may connect to: public unicast only.

A listed server (or a peer found by the crawl) controls what its name resolves
to and where it redirects. Without a rule it could make the collector fetch an
admin page on the collector's own machine or network and store what answered as
statistics. So every connection, redirects and links included, goes through
`GuardedBackend`: it resolves the name once, refuses the connection when any
resolved address is not public, and then connects to exactly the address it
checked (no second look-up that a DNS answer with a short TTL could change).

Hosts listed in `http.allow_hosts` skip the rule (the tests list `127.0.0.1`; an
admin may list an instance on their own network). An IP literal or `localhost`
is refused unless listed, before any look-up. What a host name spells (an
address, this machine) is read by the pure rules of `tracker.hosts`, which the
peer-list parser and the crawl policy share.

`ipaddress`'s own `is_global` is not trusted alone: on Python 3.11 it calls some
of these ranges global (IPv4-mapped and NAT64 forms of private addresses, for
one), so the IPv6 wrappers are unwrapped here and the ranges listed explicitly.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
from httpcore._backends.anyio import AnyIOBackend

from tracker.hosts import IPAddress, host_key, is_local_name, is_numeric_host, literal_address

_V4_DENIED: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved (IETF protocol assignments)"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "reserved (6to4 relay)"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved (benchmarking)"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
)
_V6_DENIED: tuple[tuple[str, str], ...] = (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b::/96", "NAT64"),
    ("64:ff9b:1::/48", "NAT64 (local use)"),
    ("100::/64", "reserved (discard)"),
    ("2001::/32", "Teredo"),
    ("2001:2::/48", "reserved (benchmarking)"),
    ("2001:10::/28", "reserved (ORCHID)"),
    ("2001:20::/28", "reserved (ORCHIDv2)"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "reserved (SRv6)"),
    ("fc00::/7", "private (unique local)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
)
_V4_NETWORKS = tuple((ipaddress.IPv4Network(net), why) for net, why in _V4_DENIED)
_V6_NETWORKS = tuple((ipaddress.IPv6Network(net), why) for net, why in _V6_DENIED)
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")


class ForbiddenAddress(Exception):
    """A connection the address rule refused; `str()` says which address and why."""


def forbidden_reason(address: IPAddress) -> str | None:
    """Why the collector must not connect to this address, or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped
        if inner is None and address in _V4_COMPATIBLE and int(address) > 1:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            why = forbidden_reason(inner)
            return f"{why} (IPv4 inside IPv6)" if why else None
        listed = next((why for net, why in _V6_NETWORKS if address in net), None)
    else:
        listed = next((why for net, why in _V4_NETWORKS if address in net), None)
    if listed is not None:
        return listed
    return None if address.is_global else "not a public address"


class AddressPolicy:
    """The rule with its exemptions; `check_literal` runs before any look-up."""

    def __init__(self, allow_hosts: Iterable[str] = ()) -> None:
        self.allow_hosts = frozenset(host_key(host) for host in allow_hosts)

    def allowed(self, host: str) -> bool:
        return host_key(host) in self.allow_hosts

    def check_literal(self, host: str) -> None:
        """Refuse an IP literal or a local name that is not listed, without resolving it."""
        if self.allowed(host):
            return
        if is_local_name(host):
            raise ForbiddenAddress(f"{host} names this machine and is not in http.allow_hosts")
        if literal_address(host) is not None or is_numeric_host(host):
            raise ForbiddenAddress(f"{host} is an IP address not listed in http.allow_hosts")

    def check_resolved(self, host: str, addresses: Iterable[IPAddress]) -> None:
        """Refuse the host when any address it resolves to is not public."""
        if self.allowed(host):
            return
        for address in addresses:
            why = forbidden_reason(address)
            if why is not None:
                raise ForbiddenAddress(f"{host} resolves to {address}, which is {why}")


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the address rule in front of every connection."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy
        self._inner = AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.policy.check_literal(host)
        addresses = await _resolve(host, port, timeout)
        self.policy.check_resolved(host, addresses)
        error: Exception | None = None
        for address in addresses:  # each one checked above; no second look-up
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"{host} has no address")

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise ForbiddenAddress("Unix sockets are not used by the collector")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


async def _resolve(host: str, port: int, timeout: float | None) -> list[IPAddress]:
    """Every address of the host, in the resolver's order, each once."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise httpcore.ConnectTimeout(f"resolving {host} took too long") from None
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"getaddrinfo failed for {host}: {exc}") from None
    found: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = literal_address(str(sockaddr[0]))
        if address is not None and address not in found:
            found.append(address)
    if not found:
        raise httpcore.ConnectError(f"getaddrinfo failed for {host}: no address")
    return found
