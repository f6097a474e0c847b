"""Turning what a person writes in the config into one stable target key.

The same server must always be stored under the same name, whatever the config
spells (`MSTDN.jp.`, `https://mstdn.jp/`, `xn--...`), or its history splits in
two and the network total counts it twice. These are pure functions so the
name handling is tested without any DNS look-up.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

import idna

_DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


class TargetError(ValueError):
    """The text cannot name a server; the message says why."""


@dataclass(frozen=True, order=True)
class Target:
    """A server to poll: `key` is what is stored, `base_url` is what is fetched."""

    key: str
    base_url: str

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""


def normalise_host(host: str) -> str:
    """Lower-case, strip the root dot, and encode non-ASCII labels as IDNA (UTS #46)."""
    host = host.strip().rstrip(".")
    if not host:
        raise TargetError("empty host name")
    if host.startswith("[") and host.endswith("]"):
        return "[" + _normalise_ip(host[1:-1], v6_only=True) + "]"
    try:
        return _normalise_ip(host, v6_only=False)
    except TargetError:
        pass
    try:
        ascii_host: str = idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise TargetError(f"{host!r} is not a valid host name ({exc})") from None
    ascii_host = ascii_host.lower()
    labels = ascii_host.split(".")
    if any(not _LABEL.match(label) for label in labels) or len(ascii_host) > 253:
        raise TargetError(f"{host!r} is not a valid host name")
    return ascii_host


def _normalise_ip(text: str, *, v6_only: bool) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise TargetError(f"{text!r} is not an IP address") from None
    if v6_only and address.version != 6:
        raise TargetError(f"{text!r} in brackets must be an IPv6 address")
    return str(address)


def parse_target(text: str) -> Target:
    """A bare domain means `https://domain`; a URL with scheme and port is used as given.

    The key is `host[:port]`, the port kept only when it is not the scheme's default,
    so `https://mastodon.social:443/` and `mastodon.social` are one target.
    """
    raw = text.strip()
    if not raw:
        raise TargetError("empty target")
    candidate = raw if "://" in raw else "https://" + raw
    try:
        parts = urlsplit(candidate)
        port = parts.port
    except ValueError as exc:
        raise TargetError(f"{raw!r} is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise TargetError(f"{raw!r} must use http or https")
    if parts.username or parts.password:
        raise TargetError(f"{raw!r} must not contain a user name or password")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise TargetError(f"{raw!r} must name a server, without a path or query")
    host = normalise_host(_raw_host(parts.netloc))
    key = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    netloc = host if port is None else f"{host}:{port}"
    return Target(key=key, base_url=f"{scheme}://{netloc}")


def _raw_host(netloc: str) -> str:
    """The host part of a netloc, keeping non-ASCII as written (urlsplit lower-cases it)."""
    hostport = netloc.rsplit("@", 1)[-1]
    if hostport.startswith("["):
        return hostport[: hostport.index("]") + 1]
    return hostport.rsplit(":", 1)[0] if hostport.count(":") == 1 else hostport


def unique_targets(texts: list[str]) -> list[Target]:
    """Parse and de-duplicate, keeping the first spelling of each server."""
    seen: dict[str, Target] = {}
    for text in texts:
        target = parse_target(text)
        seen.setdefault(target.key, target)
    return list(seen.values())


def target_for(host: str, allow_hosts: Collection[str]) -> Target:
    """The target of a host key the crawl stored (`host` or `host:port`).

    Peer lists name hosts, not URLs, and the fediverse is HTTPS. The one exception is
    a host listed in `http.allow_hosts` and named with a port (`127.0.0.1:8080`): the
    loopback test servers, or a server on the admin's own network, fetched over plain
    HTTP as the config allowed.
    """
    name, _, port = host.rpartition(":")
    if port.isdigit() and name and name.strip("[]") in allow_hosts:
        return parse_target(f"http://{host}")
    return parse_target(host)


def exclusion_entry(text: str) -> str:
    """The normalised form of one `exclude` entry; ValueError when it names no host.

    A domain (`Example.COM.`, IDNA allowed; a leading `*.` or `.` means the same
    domain), or an exact host key with a port (`127.0.0.1:8081`, for the loopback
    tests), or an IP literal (matched exactly).
    """
    entry = text.strip().lower()
    for prefix in ("*.", "."):
        if entry.startswith(prefix):
            entry = entry[len(prefix) :]
            break
    if not entry or "/" in entry or "@" in entry:
        raise ValueError(f"{text!r} is not a domain")
    host, port = split_port(entry)
    try:
        name = normalise_host(host)
    except TargetError as exc:
        raise ValueError(str(exc)) from None
    if ":" in name and not name.startswith("["):
        name = f"[{name}]"  # IPv6 in brackets, as host keys spell it
    if port is None:
        return name
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} has a bad port")
    return f"{name}:{int(port)}"


def split_port(key: str) -> tuple[str, str | None]:
    """(`host`, `port`) of `host:port` or `[v6]:port`; a bare IPv6 address has no port."""
    if key.startswith("["):
        end = key.find("]")
        if end > 0 and key[end + 1 : end + 2] == ":":
            return key[: end + 1], key[end + 2 :]
        return key, None
    if key.count(":") == 1:
        host, _, port = key.partition(":")
        return host, port
    return key, None
