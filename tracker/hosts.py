"""What a host name in a URL or a peer list spells: an address, this machine, or a name.

Pure rules on text, no look-up and no socket, so every layer may use them: the
address rule of `tracker.http.addresses` (refuse an IP literal or `localhost`
before any look-up, compare with `http.allow_hosts` in one spelling), the peer
lists of `tracker.parsers.peers` (drop such hosts as junk before they are
queued) and the crawl policy (`tracker.crawl.policy`: an address has no
registrable domain) must agree on them, and the parsers may not import
`tracker.http`. They live here, a low module, rather than in `tracker.targets`,
which turns what a person writes in the config into a target key.
"""

from __future__ import annotations

import ipaddress
import re

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def literal_address(host: str) -> IPAddress | None:
    """The IP address a URL host spells directly (`[::1]` or `::1`), else None."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def host_key(host: str) -> str:
    """One spelling per host for comparing with `allow_hosts` (IPv6 without brackets)."""
    address = literal_address(host)
    if address is not None:
        return str(address)
    return host.strip().rstrip(".").lower()


_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$")
"""`127.1`, `2130706433`, `0x7f.1`: the resolver reads these as IPv4 without DNS."""


def is_local_name(host: str) -> bool:
    """`localhost` and names under it resolve to this machine without asking DNS."""
    name = host.strip().rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


def is_numeric_host(host: str) -> bool:
    """An address in a spelling `ipaddress` does not read but the C resolver does."""
    return bool(_NUMERIC_HOST.match(host.strip().rstrip(".").lower()))
