"""The host-name rules as pure functions: each a unit test on a string, no look-up.

The address rule (`tests/http/test_addresses.py`), the peer lists
(`tests/parsers/test_peers.py`) and the crawl policy test them through their
callers; here is what each rule itself says.
"""

from __future__ import annotations

import ipaddress

import pytest

from tracker.hosts import host_key, is_local_name, is_numeric_host, literal_address


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
        ("fe80::1%eth0", "fe80::1"),  # the zone is not part of the address
    ],
)
def test_literal_address_reads_what_a_url_host_spells(host: str, address: str) -> None:
    assert literal_address(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["server.example", "localhost", "127.1", "0x7f.0.0.1", "[::1"])
def test_literal_address_is_none_for_names_and_resolver_only_spellings(host: str) -> None:
    assert literal_address(host) is None


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("[0:0::1]", "::1"),
        ("127.0.0.1", "127.0.0.1"),
        (" Server.EXAMPLE. ", "server.example"),
        ("LOCALHOST", "localhost"),
    ],
)
def test_host_key_is_one_spelling_per_host(host: str, key: str) -> None:
    assert host_key(host) == key


@pytest.mark.parametrize("host", ["localhost", "LocalHost.", "api.localhost", " localhost "])
def test_local_names(host: str) -> None:
    assert is_local_name(host)


@pytest.mark.parametrize("host", ["notlocalhost", "localhost.example", "127.0.0.1", ""])
def test_not_local_names(host: str) -> None:
    assert not is_local_name(host)


@pytest.mark.parametrize(
    "host", ["127.1", "2130706433", "0x7f.0.0.1", "0X7F.1", "1.2.3.4", "1.2.3.4."]
)
def test_numeric_hosts_the_resolver_reads_as_ipv4(host: str) -> None:
    assert is_numeric_host(host)


@pytest.mark.parametrize("host", ["1.2.3.4.5", "a1.example", "0x7g.1", "::1", "server.example"])
def test_not_numeric_hosts(host: str) -> None:
    assert not is_numeric_host(host)
