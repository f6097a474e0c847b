"""Peer lists, in each software's own shape, turned into host keys the crawl may fetch.

A peer list is written by a server we do not control and names hosts we have
never seen: it is where junk (IP addresses, `localhost`, single labels, URLs,
names too long for DNS) enters the crawl. Everything a peer list names goes
through `normalise_peer`, so what reaches the `servers` table is one spelling
per server (the same key `tracker.targets.parse_target` gives a configured
server) and nothing the address rule would refuse is ever queued: junk is
counted for the run summary and dropped here, before any look-up.

Pure functions only (no DNS): each rule is a unit test on a string.
"""

from __future__ import annotations

import enum
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracker.hosts import host_key, is_local_name, is_numeric_host, literal_address
from tracker.model import Fetched, PayloadError, decode_json
from tracker.parsers.fediverse import LEMMY_INSTANCES, MISSKEY_INSTANCES, PEERS
from tracker.targets import TargetError, normalise_host

MAX_HOST = 253
"""The longest DNS name in text form (RFC 1035, without the root dot)."""
MAX_INPUT = 2048
"""Longer entries are junk without parsing: no peer list names a host with a 2 kB URL."""

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_PORT = re.compile(r"^[0-9]{1,5}$")
_NUMERIC_TLD = re.compile(r"^[0-9]+$")
_ADDRESS_CHARS = re.compile(r"[0-9a-fx.:]+", re.IGNORECASE)
"""The only characters of an address (`ipaddress`, or `0x7f.1`; before a `%scope`)."""
_PLAIN_NAME = re.compile(r"^(?:(?!-)[a-z0-9-]{1,63}(?<!-)\.)*(?!-)[a-z0-9-]{1,63}(?<!-)$")
"""Lower-case ASCII labels that IDNA would return unchanged (given no `--`)."""


class Junk(enum.Enum):
    """Why a peer-list entry names no server we may fetch (the value is the summary key).

    An Enum, not a str subclass, so `isinstance(result, str)` means "a host key".
    """

    IP_LITERAL = "ip_literal"
    """An address (`192.0.2.1`, `[2001:db8::1]`, `127.1`, `2130706433`) not in allow_hosts."""
    LOCAL_NAME = "local_name"
    """`localhost` or a name under it: resolves to this machine without DNS."""
    SINGLE_LABEL = "single_label"
    """No dot (`mastodon`, `com`): a search-domain or intranet name, never a public server."""
    INVALID = "invalid"
    """Not a host name: bad characters, empty labels, a bad port, an all-digit top label."""
    TOO_LONG = "too_long"
    """More than 253 characters (or an ASCII form that long)."""
    NOT_TEXT = "not_text"
    """Not a string at all (a number, null, an object in a list of names)."""


def normalise_peer(text: object, allow_hosts: frozenset[str] = frozenset()) -> str | Junk:
    """The host key a peer-list entry names, or why it is junk.

    Trim, lower case, IDNA (UTS 46), no trailing dot; a scheme, userinfo, path, query
    and fragment are dropped (`https://user@Example.ORG:443/about` -> `example.org`).
    A port is dropped too, except on a host listed in `allow_hosts` (the loopback
    test servers are `127.0.0.1:PORT`): there it is part of the key, as in
    `parse_target`. Hosts in `allow_hosts` are kept even when they are addresses;
    any other address or numeric spelling is junk.
    """
    if not isinstance(text, str):
        return Junk.NOT_TEXT
    raw = text.strip()
    if len(raw) > MAX_INPUT:
        return Junk.TOO_LONG
    split = _split_authority(raw)
    if split is None:
        return Junk.INVALID
    host, port = split
    if host.endswith(".."):  # `a..` would become `a` once the root dot is stripped
        return Junk.INVALID
    host = host.rstrip(".")
    if not host:
        return Junk.INVALID
    if allow_hosts and _allow_key(host) in allow_hosts:
        return _allowed_key(host, port)
    return _public_name(host)


def _address_like(host: str) -> bool:
    """Cheap first test: only such text can be an address (`ipaddress` raising is slow)."""
    return bool(_ADDRESS_CHARS.fullmatch(host.strip("[]").split("%", 1)[0]))


def _is_address(host: str) -> bool:
    """`literal_address` or `is_numeric_host`: an address in any spelling."""
    if not _address_like(host):
        return False
    return literal_address(host) is not None or is_numeric_host(host)


def _allow_key(host: str) -> str:
    """`host_key`, the spelling `allow_hosts` is compared in."""
    return host_key(host) if _address_like(host) else host.lower()


def _public_name(host: str) -> str | Junk:
    """The normalised name of a host not in allow_hosts, or why it is junk."""
    if _is_address(host):
        return Junk.IP_LITERAL
    if ":" in host or host.startswith("["):
        return Junk.INVALID
    if is_local_name(host):
        return Junk.LOCAL_NAME
    if len(host) > MAX_HOST:
        return Junk.TOO_LONG
    name = host.lower()
    if "--" in name or not _PLAIN_NAME.match(name):  # the fast path covers most peers
        try:
            name = normalise_host(host)
        except TargetError:
            return Junk.TOO_LONG if _ascii_too_long(host) else Junk.INVALID
    if _is_address(name):
        return Junk.IP_LITERAL  # full-width digits and dots map to an address
    if is_local_name(name):  # so can a full-width `localhost`
        return Junk.LOCAL_NAME
    labels = name.split(".")
    if len(labels) == 1:
        return Junk.SINGLE_LABEL
    if _NUMERIC_TLD.match(labels[-1]):
        return Junk.INVALID  # no top-level domain is all digits; resolvers may read it as IPv4
    return name


def _split_authority(raw: str) -> tuple[str, str | None] | None:
    """(host, port or None) of an entry that may be a URL; None when it cannot be one."""
    rest = _SCHEME.sub("", raw, count=1)
    if rest.startswith("//"):
        rest = rest[2:]
    authority = re.split(r"[/?#\\]", rest, maxsplit=1)[0]
    authority = authority.rpartition("@")[2]
    if not authority or any(ch.isspace() for ch in authority):
        return None
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            return None
        host, tail = authority[: end + 1], authority[end + 1 :]
        if tail and not tail.startswith(":"):
            return None
        return host, _port(tail[1:]) if tail else None
    if authority.count(":") == 1:
        host, _, port_text = authority.partition(":")
        port = _port(port_text)
        if port is None and port_text:
            return None
        return host, port
    return authority, None  # no port, or an unbracketed IPv6 address (junk below)


def _port(text: str) -> str | None:
    """The port as a canonical decimal string; None when empty or out of range."""
    if not _PORT.match(text) or not 0 < int(text) < 65536:
        return None
    return str(int(text))


def _allowed_key(host: str, port: str | None) -> str | Junk:
    """`host` or `host:port` for a host the config exempts from the address rule."""
    try:
        name = normalise_host(host)
    except TargetError:
        return Junk.INVALID
    if ":" in name and not name.startswith("["):
        name = f"[{name}]"  # IPv6 in brackets, as `parse_target` keys it
    return name if port is None else f"{name}:{port}"


def _ascii_too_long(host: str) -> bool:
    """Whether a name fails IDNA only because its ASCII form passes 253 characters."""
    try:
        labels = [_alabel_length(label) for label in host.split(".")]
    except (UnicodeError, ValueError):
        return False
    return sum(labels) + len(labels) - 1 > MAX_HOST


def _alabel_length(label: str) -> int:
    if label.isascii():
        return len(label)
    return len("xn--") + len(label.lower().encode("punycode"))


@dataclass
class PeerSet:
    """The servers one peer list names, and what was dropped from it.

    `hosts`: distinct host keys; `junk`: reason -> count of dropped entries;
    `duplicates`: entries that named a host already in `hosts` (another spelling
    of the same server, or the same name twice).
    """

    hosts: set[str] = field(default_factory=set)
    junk: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0

    @property
    def dropped(self) -> int:
        return sum(self.junk.values())


def clean_peers(raw: Iterable[Any], allow_hosts: frozenset[str] = frozenset()) -> PeerSet:
    """Normalise every entry of a peer list; keep each server once and count the rest."""
    peers = PeerSet()
    for entry in raw:
        result = normalise_peer(entry, allow_hosts)
        if isinstance(result, Junk):
            peers.junk[result.value] += 1
        elif result in peers.hosts:
            peers.duplicates += 1
        else:
            peers.hosts.add(result)
    return peers


def read_mastodon_peers(document: Any) -> list[Any]:
    """`GET /api/v1/instance/peers` (Mastodon, Pleroma, Akkoma): a JSON array of names.

    Entries are returned as they are; a non-string entry becomes `not_text` junk
    in `clean_peers` rather than failing the whole list.
    """
    if not isinstance(document, list):
        raise PayloadError("bad_shape", "instance/peers is not a JSON array")
    return list(document)


def read_misskey_instances(document: Any) -> list[Any]:
    """One page of `POST /api/federation/instances`: an array of objects with `host`.

    One entry per object (None for an object without a string `host`, which
    `clean_peers` counts as `not_text`), so `len()` is the page's length: a page
    shorter than the `limit` asked for is the last one.
    """
    if not isinstance(document, list):
        raise PayloadError("bad_shape", "federation/instances is not a JSON array")
    return [item.get("host") if isinstance(item, dict) else None for item in document]


def read_lemmy_instances(document: Any) -> list[Any]:
    """`GET /api/v3/federated_instances`: the `domain` of each `linked` instance.

    `allowed` and `blocked` are the admin's lists, not servers this one talks to,
    so only `linked` is read. `federated_instances` is null or absent when the
    server has federation turned off: no peers, not an error.
    """
    if not isinstance(document, dict):
        raise PayloadError("bad_shape", "federated_instances answer is not a JSON object")
    federated = document.get("federated_instances")
    if federated is None:
        return []
    if not isinstance(federated, dict) or not isinstance(federated.get("linked"), list):
        raise PayloadError("bad_shape", "federated_instances without a `linked` array")
    return [item.get("domain") if isinstance(item, dict) else None for item in federated["linked"]]


_READERS = {
    PEERS: read_mastodon_peers,
    MISSKEY_INSTANCES: read_misskey_instances,
    LEMMY_INSTANCES: read_lemmy_instances,
}


def read_peer_records(records: Sequence[Fetched]) -> list[Any]:
    """Every entry of every peer list a server's fetch log holds (all Misskey pages).

    A page that failed or has the wrong shape contributes nothing: the server was
    still measured, and the peers it did list are still followed.
    """
    entries: list[Any] = []
    for record in records:
        reader = _READERS.get(record.kind)
        if reader is None or not record.ok:
            continue
        try:
            entries.extend(reader(decode_json(record)))
        except PayloadError:
            continue
    return entries
