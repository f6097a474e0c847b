"""Which servers the crawl must leave alone, and which it must not count yet.

- `Exclusions`: domains the operator never wants contacted (config `exclude` and a
  published do-not-crawl list in `exclude_file`), matched by suffix on a label
  boundary, so `example.com` covers `a.example.com` but not `badexample.com`.
- `registrable_domain` and `ClusterWatch`: a spammer can list thousands of
  `*.spam.example` servers in a peer list, each answering with the same made-up
  numbers. More than `cluster_threshold` new hosts under one registrable domain
  (Public Suffix List, so `a.github.io` and `b.github.io` are different owners) in
  one crawl are flagged, and `cluster_members_to_count` lets a flagged server into
  the network totals only once its numbers are its own.

Pure: the Public Suffix List is the copy bundled in the `publicsuffixlist` wheel,
read from disk, never downloaded.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from publicsuffixlist import PublicSuffixList

from tracker.hosts import literal_address
from tracker.targets import exclusion_entry, split_port


class ExclusionError(ValueError):
    """An `exclude` entry or `exclude_file` line that names no domain; says where."""


@dataclass(frozen=True)
class Exclusions:
    """Domains (with everything under them) and exact host keys the crawl never contacts."""

    entries: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, exclude: Iterable[str], exclude_file: Path | None) -> Exclusions:
        """`exclude` entries plus the file's lines (one domain a line, `#` comments).

        Raises ExclusionError naming the entry's index, or the file and line number.
        """
        entries: set[str] = set()
        for index, text in enumerate(exclude):
            try:
                entries.add(exclusion_entry(text))
            except ValueError as exc:
                raise ExclusionError(f"exclude item {index}: {exc}") from None
        if exclude_file is not None:
            entries.update(_read_file(exclude_file))
        return cls(frozenset(entries))

    def matches(self, host: str) -> bool:
        """Whether a host key is excluded: itself, its host without the port, or a parent."""
        key = host.strip().rstrip(".").lower()
        if key in self.entries:
            return True
        name, _ = split_port(key)
        if name in self.entries:
            return True
        if literal_address(name) is not None:
            return False  # addresses match exactly, never by suffix
        labels = name.split(".")
        return any(".".join(labels[start:]) in self.entries for start in range(1, len(labels)))

    def __len__(self) -> int:
        return len(self.entries)


def _read_file(path: Path) -> set[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExclusionError(f"{path}: cannot read the exclude file ({exc})") from None
    entries: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if not content:
            continue
        try:
            entries.add(exclusion_entry(content))
        except ValueError as exc:
            raise ExclusionError(f"{path}:{number}: {exc}") from None
    return entries


@functools.cache
def _suffix_list() -> PublicSuffixList:
    """The bundled list, parsed once (about 10k rules)."""
    return PublicSuffixList()


def registrable_domain(host: str) -> str:
    """The domain one owner registered (`a.b.example.co.uk` -> `example.co.uk`).

    Uses the whole Public Suffix List, private section included, so hosting
    suffixes such as `github.io` separate their customers. An IP literal, a
    `host:port` key (the loopback test servers) or a host that is itself a public
    suffix is its own registrable domain.
    """
    key = host.strip().rstrip(".").lower()
    name, port = split_port(key)
    if port is not None or literal_address(name) is not None:
        return key
    return _suffix_list().privatesuffix(name) or name


class ClusterWatch:
    """Counts the new hosts of one crawl by registrable domain and flags the crowded ones.

    A domain is flagged when more than `threshold` new hosts under it were
    discovered in this crawl. Each host is counted once however often it is fed.
    """

    def __init__(self, threshold: int) -> None:
        if threshold < 0:
            raise ValueError("cluster threshold must not be negative")
        self.threshold = threshold
        self._seen: dict[str, set[str]] = {}
        self._flagged: set[str] = set()

    def add(self, hosts: Iterable[str]) -> dict[str, list[str]]:
        """Feed newly discovered hosts; the hosts to flag now, by registrable domain.

        When a domain passes the threshold, every host of it seen in this crawl is
        returned (the earlier ones were stored unflagged); after that, each new one.
        """
        flag: dict[str, list[str]] = {}
        for host in hosts:
            domain = registrable_domain(host)
            members = self._seen.setdefault(domain, set())
            if host in members:
                continue
            members.add(host)
            if domain in self._flagged:
                flag.setdefault(domain, []).append(host)
            elif len(members) > self.threshold:
                self._flagged.add(domain)
                flag[domain] = sorted(members)
        return flag

    def cluster_of(self, host: str) -> str | None:
        """The flagged domain a host belongs to, or None."""
        domain = registrable_domain(host)
        return domain if domain in self._flagged else None

    @property
    def flagged(self) -> frozenset[str]:
        """The registrable domains flagged so far in this crawl."""
        return frozenset(self._flagged)


def cluster_members_to_count(members: Mapping[str, Hashable | None]) -> set[str]:
    """The members of one flagged cluster whose numbers are their own.

    `members` maps each host of the cluster to its signature, (software,
    users_total, posts_total) of its last measurement, or None when it was not
    measured. A host counts once its signature differs from every other member's:
    a spam farm serves the same numbers from every name, a real server does not.
    """
    measured = [signature for signature in members.values() if signature is not None]
    seen = Counter(measured)
    return {
        host
        for host, signature in members.items()
        if signature is not None and seen[signature] == 1
    }
