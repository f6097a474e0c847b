"""Writing bodies into the payload archive against their stream's previous version,
and reading them back through their chains of deltas.

A stream is one (source, target, fetch kind, page): the n-th fetch of that kind in
an attempt (a Misskey peer list is fetched in pages of the same kind, a relay's
listHosts too). The previous version of a stream is the body of its most recent
fetch that archived one. A writer finds it in its own memory (a long-running
`tracker schedule` wrote it six hours before) or else in the fetch log; the codecs
are in `payload_codec.py`.

The fetch log names a body by its integer key (`payloads.id`); rows are unique by
the sha256 of the body as received, so an identical body is stored once whatever
its stream. A delta names its base (`base_sha256`), which can be
any row: `db prune` keeps every row a kept row is stored against (prune.py), and a
writer checks, after inserting, that each base it used is still there, and writes
the body whole when one is not (a prune on PostgreSQL, or a stale memory).
"""

from __future__ import annotations

import hashlib
import zlib
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, Connection, Select, bindparam, select, update

from tracker.model import utc
from tracker.storage import payload_codec as codec
from tracker.storage.payload_codec import Base, Decoded, Encoded
from tracker.storage.points import insert_for
from tracker.storage.schema import attempts, fetches, payloads

Stream = tuple[str, str, str, int]
"""source, target, fetch kind, and which fetch of that kind in the attempt (0, 1...)."""

LOOKBACK = 8
"""Attempts of a target searched for each stream's previous version: a stream not
archived in its target's last 8 attempts starts again whole."""

CHUNK = 500
"""Keys per IN (...) list."""

READ_CACHE = 64 * 1024 * 1024
WRITE_CACHE = 32 * 1024 * 1024
"""Bytes of decoded bodies kept in memory. A reparse reads each stream's versions in
order, so a cache holding the versions of one run's streams decodes each delta once;
a writer keeps the last version of each stream it wrote, so a long-running schedule
finds it without reading the database."""


@dataclass(frozen=True)
class NewBody:
    digest: str
    body: bytes
    stream: Stream
    fetched_at: datetime


def digest_of(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class _Lru:
    """Values with a weight, least recently used dropped first past `limit` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: OrderedDict[Any, tuple[int, Any]] = OrderedDict()
        self.weight = 0

    def get(self, key: Any) -> Any:
        found = self.items.get(key)
        if found is None:
            return None
        self.items.move_to_end(key)
        return found[1]

    def put(self, key: Any, value: Any, weight: int) -> None:
        self.discard(key)
        if weight > self.limit:
            return
        self.items[key] = (weight, value)
        self.weight += weight
        while self.weight > self.limit:
            _, (dropped, _) = self.items.popitem(last=False)
            self.weight -= dropped

    def discard(self, key: Any) -> None:
        found = self.items.pop(key, None)
        if found is not None:
            self.weight -= found[0]


class PayloadReader:
    """Decodes archived bodies, following each delta to its base.

    A body whose row or some base of it is gone counts as missing (as a pruned one
    does); `broken` counts the rows that were there but could not be decoded.
    """

    def __init__(self, cache_bytes: int = READ_CACHE) -> None:
        self.cache = _Lru(cache_bytes)
        self.broken = 0

    def read(
        self, connection: Connection, digests: Iterable[str], *, whole_chains: bool = False
    ) -> dict[str, Base]:
        """The decoded body (with its depth) of each digest that can be read.

        `whole_chains` reads each row with everything below it in one query (a writer
        meeting a stream cold); otherwise the rows first, then only the chains below
        them that are not in the cache (a reparse, whose cache holds the versions just
        read)."""
        found: dict[str, Base] = {}
        missing: set[str] = set()
        for digest in set(digests):
            cached = self.cache.get(digest)
            if cached is not None:
                found[digest] = cached
            else:
                missing.add(digest)
        if not missing:
            return found
        if whole_chains:
            rows = _chains(connection, missing)
        else:
            rows = _rows(connection, missing)
            bases = {row[2] for row in rows.values() if row[2] is not None}
            needed = {b for b in bases if b not in rows and self.cache.get(b) is None}
            if needed:
                rows.update(_chains(connection, needed))
        for digest in missing:
            decoded = self._decode(digest, rows)
            if decoded is not None:
                found[digest] = decoded
        return found

    def _decode(self, digest: str, rows: dict[str, tuple[Any, ...]]) -> Base | None:
        """Walk down to a cached or self-contained row, then decode back up."""
        path: list[tuple[Any, ...]] = []
        below: Base | None = None
        key: str | None = digest
        while key is not None:
            cached = self.cache.get(key)
            if cached is not None:
                below = cached
                break
            row = rows.get(key)
            if row is None or len(path) > codec.MAX_DEPTH + 1_000:
                return None  # pruned, or a loop no writer makes
            path.append(row)
            key = None if row[1] in codec.SELF_CONTAINED else row[2]
        for sha, codec_name, _base, depth, stored in reversed(path):
            try:
                decoded = codec.decode(codec_name, bytes(stored), below.decoded if below else None)
            except (zlib.error, ValueError, IndexError):  # corrupt: read as missing
                self.broken += 1
                return None
            below = Base(sha, int(depth), decoded)
            self.cache.put(sha, below, decoded.weight + len(stored))
        return below


_COLUMNS = (
    payloads.c.sha256,
    payloads.c.codec,
    payloads.c.base_sha256,
    payloads.c.depth,
    payloads.c.body,
)
_KEYS: BindParameter[Any] = bindparam("keys", expanding=True)
_ROWS = select(*_COLUMNS).where(payloads.c.sha256.in_(_KEYS))


def _chain_query() -> Select[Any]:
    """These rows and every row below them: one recursive query for whole chains."""
    chain = (
        select(payloads.c.sha256, payloads.c.base_sha256)
        .where(payloads.c.sha256.in_(_KEYS))
        .cte("chain", recursive=True)
    )
    below = payloads.alias("below")
    chain = chain.union(
        select(below.c.sha256, below.c.base_sha256).join(
            chain, below.c.sha256 == chain.c.base_sha256
        )
    )
    return select(*_COLUMNS).where(payloads.c.sha256.in_(select(chain.c.sha256)))


_CHAINS = _chain_query()
_EXISTING = select(payloads.c.sha256, payloads.c.id, payloads.c.codec).where(
    payloads.c.sha256.in_(_KEYS)
)
"""Statements built once: a crawl runs them for every server it writes, and building
a statement costs more than SQLite takes to run it."""


def _run(connection: Connection, statement: Any, keys: Iterable[str]) -> list[Any]:
    ordered = sorted(keys)
    out: list[Any] = []
    for start in range(0, len(ordered), CHUNK):
        out.extend(connection.execute(statement, {"keys": ordered[start : start + CHUNK]}))
    return out


def _rows(connection: Connection, digests: Iterable[str]) -> dict[str, tuple[Any, ...]]:
    return {row[0]: tuple(row) for row in _run(connection, _ROWS, digests)}


def _chains(connection: Connection, digests: Iterable[str]) -> dict[str, tuple[Any, ...]]:
    return {row[0]: tuple(row) for row in _run(connection, _CHAINS, digests)}


class PayloadWriter:
    """Archives a transaction's new bodies; remembers each stream's last version.

    What it remembers is staged until `commit()` (the Store calls it after the
    transaction commits), so a rolled-back write leaves no trace in it.
    """

    def __init__(self, *, deltas: bool = True, cache_bytes: int = WRITE_CACHE) -> None:
        self.deltas = deltas
        self.streams = _Lru(cache_bytes)
        self.reader = PayloadReader(cache_bytes=8 * 1024 * 1024)
        self._staged: dict[Stream, Base | None] = {}
        self.rebased = 0
        """Rows written whole after their base was found gone (for tests and benches)."""

    def commit(self) -> None:
        for stream, base in self._staged.items():
            if base is None:
                self.streams.discard(stream)
            else:
                self.streams.put(stream, base, base.decoded.weight)
        self._staged.clear()

    def rollback(self) -> None:
        self._staged.clear()

    def write(self, connection: Connection, bodies: Sequence[NewBody]) -> dict[str, int]:
        """Insert the bodies not archived yet, each against its stream's previous version;
        returns the key (`payloads.id`) of every body, for the fetch log."""
        if not bodies:
            return {}
        existing = _existing(connection, {b.digest for b in bodies})
        fresh = [b for b in bodies if b.digest not in existing]
        previous, read_now = self._previous(connection, fresh) if self.deltas else ({}, set())
        rows: dict[str, dict[str, Any]] = {}
        encoded: dict[str, Encoded] = {}
        for item in bodies:
            if not self.deltas:  # nothing to remember: every body is stored whole
                if item.digest not in existing and item.digest not in rows:
                    result = codec.encode(item.body, item.stream[2], None, deltas=False)
                    rows[item.digest] = _row(item, result)
                continue
            if item.digest in existing or item.digest in rows:
                known = self._known(item.stream)
                same = known is not None and known.sha256 == item.digest
                self._staged[item.stream] = known if same else _row_base(encoded, item.digest)
                continue
            base = self._known(item.stream) if item.stream in self._staged else None
            base = base or previous.get(item.stream)
            result = codec.encode(item.body, item.stream[2], base, deltas=self.deltas)
            encoded[item.digest] = result
            rows[item.digest] = _row(item, result)
            self._staged[item.stream] = Base(item.digest, result.depth, result.decoded)
        keys = {digest: key for digest, (key, _) in existing.items()}
        if not rows:
            return keys
        statement = insert_for(connection.dialect.name, payloads).on_conflict_do_nothing(
            index_elements=["sha256"]
        )
        connection.execute(statement, list(rows.values()))
        # Asked after the insert: on PostgreSQL another writer may have stored one first.
        keys.update((d, k) for d, (k, _) in _existing(connection, rows.keys()).items())
        if connection.dialect.name == "sqlite":
            # One writer at a time: what this transaction read or wrote is still there.
            unsure = {
                e.base_sha256
                for e in encoded.values()
                if e.base_sha256 is not None
                and e.base_sha256 not in read_now
                and e.base_sha256 not in encoded
            }
        else:
            unsure = {e.base_sha256 for e in encoded.values() if e.base_sha256 is not None}
        if unsure:
            self._check_bases(connection, encoded, unsure)
        return keys

    def _known(self, stream: Stream) -> Base | None:
        if stream in self._staged:
            return self._staged[stream]
        found: Base | None = self.streams.get(stream)
        return found

    def _previous(
        self, connection: Connection, fresh: Sequence[NewBody]
    ) -> tuple[dict[Stream, Base], set[str]]:
        """The previous version of each stream of the new bodies: from memory, else the
        fetch log of the target's last attempts, decoded through its chain (and the
        digests read from the database, which need no second look)."""
        out: dict[Stream, Base] = {}
        lookup: dict[tuple[str, str], set[tuple[str, int]]] = defaultdict(set)
        for item in fresh:
            known = self.streams.get(item.stream)
            if known is not None:
                out[item.stream] = known
            else:
                source, target, kind, ordinal = item.stream
                lookup[(source, target)].add((kind, ordinal))
        digests: dict[Stream, str] = {}
        for (source, target), wanted in lookup.items():
            for (kind, ordinal), digest in _latest(connection, source, target, wanted).items():
                digests[(source, target, kind, ordinal)] = digest
        if digests:
            decoded = self.reader.read(connection, digests.values(), whole_chains=True)
            for stream, digest in digests.items():
                if digest in decoded:
                    out[stream] = decoded[digest]
        return out, set(digests.values())

    def _check_bases(
        self, connection: Connection, encoded: dict[str, Encoded], unsure: set[str]
    ) -> None:
        """Every base used must still be there, and a set diff's base a set row: after a
        prune (PostgreSQL lets one run beside a collection), a stale memory, or another
        writer storing the same base first, the body is written whole instead. Checked
        after the insert, so a prune that starts later sees these rows and keeps their
        bases. On SQLite only the bases from memory are unsure: its writers take turns,
        so what this transaction read is still there."""
        codecs = {d: name for d, (_, name) in _existing(connection, unsure).items()}
        for digest, result in encoded.items():
            base = result.base_sha256
            if base is None or base not in unsure:
                continue
            set_ok = result.codec != codec.SETDIFF or codecs.get(base) in (
                codec.SETFULL,
                codec.SETDIFF,
            )
            if base in codecs and set_ok:
                continue
            whole = codec.self_contained(result.decoded)
            connection.execute(
                update(payloads)
                .where(payloads.c.sha256 == digest, payloads.c.base_sha256 == base)
                .values(codec=whole.codec, body=whole.stored, base_sha256=None, depth=0)
            )
            self.rebased += 1
            for stream, staged in self._staged.items():
                if staged is not None and staged.sha256 == digest:
                    self._staged[stream] = Base(digest, 0, result.decoded)


def _row_base(encoded: dict[str, Encoded], digest: str) -> Base | None:
    result = encoded.get(digest)
    return None if result is None else Base(digest, result.depth, result.decoded)


def _row(item: NewBody, result: Encoded) -> dict[str, Any]:
    return {
        "sha256": item.digest,
        "size": len(item.body),
        "codec": result.codec,
        "body": result.stored,
        "first_seen": utc(item.fetched_at),
        "base_sha256": result.base_sha256,
        "depth": result.depth,
    }


def _existing(connection: Connection, digests: Iterable[str]) -> dict[str, tuple[int, str]]:
    """The key and codec of each of these bodies that is archived already: an archived
    body is stored once, and not even compressed again."""
    return {
        str(sha): (int(key), str(name)) for sha, key, name in _run(connection, _EXISTING, digests)
    }


_RECENT = (
    select(attempts.c.id)
    .where(attempts.c.source == bindparam("source"), attempts.c.target == bindparam("target"))
    .order_by(attempts.c.started_at.desc(), attempts.c.id.desc())
    .limit(LOOKBACK)
)
_LATEST = (
    select(fetches.c.attempt_id, fetches.c.kind, payloads.c.sha256)
    .join(attempts, attempts.c.id == fetches.c.attempt_id)
    .outerjoin(payloads, payloads.c.id == fetches.c.payload_id)
    .where(fetches.c.attempt_id.in_(_RECENT))
    .order_by(attempts.c.started_at.desc(), attempts.c.id.desc(), fetches.c.seq)
)


def _latest(
    connection: Connection, source: str, target: str, wanted: set[tuple[str, int]]
) -> dict[tuple[str, int], str]:
    """The body each (kind, n-th fetch of it) last archived in the target's last attempts."""
    out: dict[tuple[str, int], str] = {}
    seen: dict[tuple[int, str], int] = {}
    for attempt_id, kind, digest in connection.execute(
        _LATEST, {"source": source, "target": target}
    ):
        ordinal = seen.get((attempt_id, kind), 0)
        seen[(attempt_id, kind)] = ordinal + 1
        key = (str(kind), ordinal)
        if digest is not None and key in wanted and key not in out:
            out[key] = str(digest)
    return out


def stream_keys(source: str, target: str, kinds: Iterable[str]) -> list[Stream]:
    """The stream of each fetch of an attempt, in order (the n-th fetch of each kind)."""
    seen: dict[str, int] = {}
    out = []
    for kind in kinds:
        ordinal = seen.get(kind, 0)
        seen[kind] = ordinal + 1
        out.append((source, target, kind, ordinal))
    return out


def decoded_bodies(
    reader: PayloadReader, connection: Connection, digests: Iterable[str]
) -> dict[str, bytes]:
    """The bodies as the parsers read them, for the digests that can be read."""
    return {digest: base.decoded.body for digest, base in reader.read(connection, digests).items()}


__all__ = [
    "Decoded",
    "NewBody",
    "PayloadReader",
    "PayloadWriter",
    "decoded_bodies",
    "digest_of",
    "stream_keys",
]
