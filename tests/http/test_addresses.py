"""The address rule as pure functions, and the backend that applies it to every connection.

Only literal addresses appear here (no name is resolved): the classifier is a pure
function of an address, and the backend's resolver is replaced where a name is used.
"""

from __future__ import annotations

import asyncio
import ipaddress
import sys
from typing import Any

import httpcore
import pytest

from tracker.http import addresses
from tracker.http.addresses import AddressPolicy, ForbiddenAddress, GuardedBackend

DENIED = {
    "127.0.0.1": "loopback",
    "127.255.0.9": "loopback",
    "10.1.2.3": "private",
    "172.16.5.4": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",
    "100.64.0.1": "carrier-grade NAT",
    "0.0.0.0": "unspecified",
    "224.0.0.251": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "192.0.2.10": "documentation",
    "198.51.100.7": "documentation",
    "203.0.113.99": "documentation",
    "198.18.0.1": "benchmarking",
    "::1": "loopback",
    "::": "unspecified",
    "fe80::1": "link-local",
    "fc00::1": "unique local",
    "fd12:3456::1": "unique local",
    "ff02::1": "multicast",
    "2001:db8::1": "documentation",
    "64:ff9b::7f00:1": "NAT64",
    "64:ff9b::808:808": "NAT64",  # even a public IPv4 behind NAT64 is refused
    "2002:7f00:1::": "6to4",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "Teredo",
    "::ffff:127.0.0.1": "loopback (IPv4 inside IPv6)",
    "::ffff:10.0.0.1": "private (IPv4 inside IPv6)",
    "::ffff:169.254.169.254": "link-local (IPv4 inside IPv6)",
    "::127.0.0.1": "loopback (IPv4 inside IPv6)",  # IPv4-compatible, deprecated
    "::ffff:100.64.1.1": "carrier-grade NAT (IPv4 inside IPv6)",
}


@pytest.mark.parametrize(("text", "why"), sorted(DENIED.items()))
def test_classifier_refuses_every_internal_or_special_range(text: str, why: str) -> None:
    reason = addresses.forbidden_reason(ipaddress.ip_address(text))
    assert reason is not None and why in reason


@pytest.mark.parametrize("text", ["9.9.9.9", "1.1.1.1", "2a00:1450:4001:80b::200e"])
def test_classifier_lets_public_unicast_through(text: str) -> None:
    assert addresses.forbidden_reason(ipaddress.ip_address(text)) is None


def test_ipv4_mapped_public_address_is_judged_by_its_ipv4_part() -> None:
    assert addresses.forbidden_reason(ipaddress.ip_address("::ffff:9.9.9.9")) is None


def test_python_is_global_alone_would_let_some_through() -> None:
    """Why the ranges are listed: `is_global` is not enough on every Python we support."""
    tricky = ["64:ff9b::7f00:1", "2002:7f00:1::", "::127.0.0.1", "::ffff:100.64.1.1"]
    for text in tricky:
        address = ipaddress.ip_address(text)
        assert address.is_global or sys.version_info >= (3, 13), text  # Python 3.11/3.12
        assert addresses.forbidden_reason(address) is not None


@pytest.mark.parametrize(
    "host",
    [
        *("127.0.0.2", "localhost", "LocalHost.", "api.localhost", "::1", "[::1]", "0.0.0.0"),
        *("[::ffff:127.0.0.1]", "[64:ff9b::7f00:1]", "127.1", "2130706433", "0x7f.0.0.1"),
    ],
)
def test_literals_and_local_names_refused_unless_listed(host: str) -> None:
    """`127.1` and friends are IPv4 to the C resolver, so they count as literals too."""
    policy = AddressPolicy(["127.0.0.1"])
    with pytest.raises(ForbiddenAddress):
        policy.check_literal(host)


def test_listed_hosts_pass_in_any_spelling() -> None:
    policy = AddressPolicy(["127.0.0.1", "::1", "localhost"])
    for host in ["127.0.0.1", "[::1]", "::1", "LOCALHOST", "localhost."]:
        policy.check_literal(host)
        policy.check_resolved(host, [ipaddress.ip_address("127.0.0.1")])


def test_a_name_is_refused_when_any_of_its_addresses_is_internal() -> None:
    policy = AddressPolicy(["127.0.0.1"])
    public = ipaddress.ip_address("9.9.9.9")
    policy.check_resolved("mixed.invalid", [public])
    with pytest.raises(ForbiddenAddress, match=r"resolves to 10\.0\.0\.5, which is private"):
        policy.check_resolved("mixed.invalid", [public, ipaddress.ip_address("10.0.0.5")])


class _Recorder:
    """Stands in for the real socket layer: records where the backend connects."""

    def __init__(self) -> None:
        self.connected: list[str] = []

    async def connect_tcp(self, host: str, port: int, **_: Any) -> Any:
        self.connected.append(host)
        return object()


def _backend(monkeypatch: pytest.MonkeyPatch, answer: list[str]) -> tuple[GuardedBackend, Any]:
    """A backend whose resolver answers `answer` (no look-up is made) and records connects."""
    lookups: list[str] = []

    async def resolve(host: str, port: int, timeout: float | None) -> list[Any]:
        lookups.append(host)
        return [ipaddress.ip_address(text) for text in answer]

    monkeypatch.setattr(addresses, "_resolve", resolve)
    backend = GuardedBackend(AddressPolicy(["127.0.0.1"]))
    recorder = _Recorder()
    backend._inner = recorder  # type: ignore[assignment]
    return backend, (recorder, lookups)


def test_backend_connects_to_the_address_it_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    backend, (recorder, lookups) = _backend(monkeypatch, ["9.9.9.9"])
    asyncio.run(backend.connect_tcp("server.invalid", 443))
    assert lookups == ["server.invalid"]  # resolved once
    assert recorder.connected == ["9.9.9.9"]  # and that address used, not the name


def test_backend_refuses_a_name_that_resolves_inside(monkeypatch: pytest.MonkeyPatch) -> None:
    backend, (recorder, _) = _backend(monkeypatch, ["9.9.9.9", "::ffff:127.0.0.1"])
    with pytest.raises(ForbiddenAddress, match="loopback"):
        asyncio.run(backend.connect_tcp("rebinding.invalid", 443))
    assert recorder.connected == []


def test_backend_refuses_unlisted_literals_before_any_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend, (recorder, lookups) = _backend(monkeypatch, ["9.9.9.9"])
    for host in ["127.0.0.2", "::1", "localhost", "0.0.0.0"]:
        with pytest.raises(ForbiddenAddress):
            asyncio.run(backend.connect_tcp(host, 80))
    assert lookups == [] and recorder.connected == []


def test_resolver_failure_reads_as_dns_error() -> None:
    """A look-up failure keeps the wording `_classify` maps to the `dns` error kind."""

    async def failing() -> None:
        loop = asyncio.get_running_loop()

        async def gai(*_: Any, **__: Any) -> Any:
            import socket

            raise socket.gaierror(-2, "Name or service not known")

        loop.getaddrinfo = gai  # type: ignore[method-assign]
        await addresses._resolve("nowhere.invalid", 443, 5)

    with pytest.raises(httpcore.ConnectError, match="getaddrinfo failed"):
        asyncio.run(failing())
