"""`tracker db prune`: drop old archived response bodies, the only part that grows fast.

Observations, runs, attempts and the fetch log are never pruned: they are small,
and they are the history. A body goes only when every fetch that archived it is
older than the cutoff, so a body a recent fetch shares (an unchanged NodeInfo
document) stays for `tracker reparse`. The fetch rows stay too, with their
`payload_id` cleared; `tracker reparse` leaves the attempts that lost a body
exactly as they are.

Deltas (payload_codec.py): a body is never removed while a row that stays is stored
against it, directly or through other old rows: reading the kept row needs the whole
chain. Such a body stays with its fetch log rows, and goes in a later prune once what
is stored against it has gone. The old rows are taken deepest first, so a chain goes
from its newest old row down, batch by batch, and each batch checks inside its write
transaction which of its rows a row outside it is stored against: a collection that
stored a new body against an old one a moment ago keeps it. On PostgreSQL each batch
first locks `payloads` against inserts (a collection waits for that batch, a few
milliseconds), so a delta written beside it cannot name a body it is removing.

Space: SQLite gets it back with `VACUUM` (the file shrinks; it needs free disk
about the size of the file while it runs). PostgreSQL gets `VACUUM ANALYZE`, which
makes the space reusable by new rows without locking out a running collection;
`VACUUM FULL payloads` returns it to the operating system but locks the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, Connection, Engine, Select, and_, exists, func, select, update

from tracker.instants import iso_z
from tracker.storage.engine import write_transaction
from tracker.storage.schema import fetches, payloads

BATCH = 2_000
_AGE = re.compile(r"^\s*(\d+)\s*([dh])\s*$")


def parse_age(text: str) -> timedelta:
    """`90d` or `36h`: how old a fetch must be for its archived body to go."""
    match = _AGE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not an age like 90d (days) or 36h (hours)")
    number, unit = int(match.group(1)), match.group(2)
    return timedelta(days=number) if unit == "d" else timedelta(hours=number)


@dataclass
class PruneSummary:
    cutoff: datetime
    payloads: int = 0
    stored_bytes: int = 0
    raw_bytes: int = 0
    fetches_unlinked: int = 0
    kept_as_base: int = 0
    size_before: int | None = None
    size_after: int | None = None
    vacuum: str = ""

    def line(self, dry_run: bool = False) -> str:
        verb = "would remove" if dry_run else "removed"
        text = (
            f"{verb} {self.payloads} archived payloads ({_size(self.stored_bytes)} stored, "
            f"{_size(self.raw_bytes)} uncompressed) fetched only before "
            f"{iso_z(self.cutoff, sep=' ', timespec='minutes')}; "
            f"{self.fetches_unlinked} fetch log rows "
            f"{'would lose' if dry_run else 'lost'} their body; observations untouched"
        )
        if self.kept_as_base:
            text += (
                f"; {self.kept_as_base} old payloads "
                f"{'would stay' if dry_run else 'stayed'} as the base of newer ones"
            )
        if self.vacuum:
            text += f"; {self.vacuum}"
        if self.size_before is not None and self.size_after is not None:
            text += f"; database {_size(self.size_before)} -> {_size(self.size_after)}"
        return text


def _size(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def _only_old_fetches(cutoff: datetime) -> ColumnElement[bool]:
    """No fetch at or after the cutoff shares this body."""
    newer = (
        select(fetches.c.id)
        .where(fetches.c.payload_id == payloads.c.id, fetches.c.fetched_at >= cutoff)
        .exists()
    )
    return and_(payloads.c.first_seen < cutoff, ~newer)


def prune_payloads(
    engine: Engine, cutoff: datetime, *, dry_run: bool = False, vacuum: bool = True
) -> PruneSummary:
    """Delete the bodies only fetched before `cutoff`, in batches, deepest deltas first,
    keeping every base a remaining row needs; then reclaim the space."""
    summary = PruneSummary(cutoff)
    old = _only_old_fetches(cutoff)
    candidates = (
        select(payloads.c.sha256).where(old).order_by(payloads.c.depth.desc(), payloads.c.sha256)
    )
    with engine.connect() as connection:
        keys = list(connection.execute(candidates).scalars())
    if dry_run:
        removed: set[str] = set()
        with engine.connect() as connection:
            for part in _parts(keys):
                doomed = _not_needed(connection, part, removed)
                summary.kept_as_base += len(part) - len(doomed)
                if doomed:
                    _add_sizes(connection, summary, doomed)
                    summary.fetches_unlinked += _count_links(connection, doomed)
                removed.update(doomed)
        summary.payloads = len(removed)
        return summary
    summary.size_before = database_size(engine)
    for part in _parts(keys):
        with write_transaction(engine) as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("LOCK TABLE payloads IN SHARE ROW EXCLUSIVE MODE")
            # Checked again inside the write transaction: a collection may have
            # archived the same body a moment ago, and then it stays.
            still_old = list(
                connection.execute(
                    select(payloads.c.sha256).where(payloads.c.sha256.in_(part), old)
                ).scalars()
            )
            doomed = _not_needed(connection, still_old, set())
            summary.kept_as_base += len(still_old) - len(doomed)
            still_old = doomed
            if not still_old:
                continue
            _add_sizes(connection, summary, still_old)
            unlinked = connection.execute(
                update(fetches)
                .where(fetches.c.payload_id.in_(_keys_of(still_old)))
                .values(payload_id=None)
            )
            summary.fetches_unlinked += max(unlinked.rowcount or 0, 0)
            gone = connection.execute(
                payloads.delete().where(
                    payloads.c.sha256.in_(still_old),
                    ~exists().where(fetches.c.payload_id == payloads.c.id),
                )
            )
            summary.payloads += max(gone.rowcount or 0, 0)
    if vacuum:
        summary.vacuum = reclaim_space(engine)
    summary.size_after = database_size(engine)
    return summary


def _not_needed(connection: Connection, part: list[str], gone: set[str]) -> list[str]:
    """The rows of `part` that no other row still there is stored against, directly or
    through rows of `part` (`gone`: rows a dry run counts as removed already)."""
    if not part:
        return []
    inside = set(part)
    below = {
        str(sha): base
        for sha, base in connection.execute(
            select(payloads.c.sha256, payloads.c.base_sha256).where(payloads.c.sha256.in_(part))
        )
    }
    keep: set[str] = set()
    dependents = select(payloads.c.sha256, payloads.c.base_sha256).where(
        payloads.c.base_sha256.in_(part)
    )
    for sha, base in connection.execute(dependents):
        if sha not in inside and sha not in gone:
            keep.add(str(base))
    frontier = list(keep)
    while frontier:  # what the kept ones are stored against, inside this batch
        following = []
        for sha in frontier:
            base = below.get(sha)
            if base is not None and base in inside and base not in keep:
                keep.add(base)
                following.append(base)
        frontier = following
    return [sha for sha in part if sha not in keep]


def _parts(keys: list[str]) -> list[list[str]]:
    return [keys[i : i + BATCH] for i in range(0, len(keys), BATCH)]


def _add_sizes(connection: Connection, summary: PruneSummary, keys: list[str]) -> None:
    row = connection.execute(
        select(
            func.coalesce(func.sum(func.length(payloads.c.body)), 0),
            func.coalesce(func.sum(payloads.c.size), 0),
        ).where(payloads.c.sha256.in_(keys))
    ).one()
    summary.stored_bytes += int(row[0])
    summary.raw_bytes += int(row[1])


def _count_links(connection: Connection, keys: list[str]) -> int:
    query = select(func.count()).where(fetches.c.payload_id.in_(_keys_of(keys)))
    return int(connection.execute(query).scalar() or 0)


def _keys_of(digests: list[str]) -> Select[tuple[int]]:
    return select(payloads.c.id).where(payloads.c.sha256.in_(digests))


def database_size(engine: Engine) -> int | None:
    """Bytes on disk: the SQLite file with its WAL, or the PostgreSQL database."""
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        path = Path(database)
        return sum(
            p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists()
        )
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            size = connection.execute(select(func.pg_database_size(func.current_database())))
            return int(size.scalar() or 0)
    return None


def reclaim_space(engine: Engine) -> str:
    """VACUUM as the engine needs it; returns what was done, for the summary line."""
    if engine.dialect.name == "sqlite":
        # On the driver's connection: SQLAlchemy would open a transaction first, and
        # VACUUM cannot run inside one.
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("VACUUM")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.close()
        finally:
            raw.close()
        return "VACUUM done"
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE payloads, fetches")
        return (
            "VACUUM ANALYZE done (PostgreSQL reuses the space for new rows; "
            "VACUUM FULL payloads returns it to the disk but locks the table)"
        )
    return ""
