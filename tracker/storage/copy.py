"""`tracker db copy`: make another database an exact, verified copy of this one.

The copy is a synchronisation, not a dump: every table is walked in primary-key
order in batches, each batch is compared with the same key range of the target,
and only rows that are missing or different are written (rows the target has and
the source does not are removed), one target transaction per batch. So a copy
killed half-way leaves only whole batches behind, and running it again skips what
is already there and finishes the rest, even if the source was collected into in
the meantime. Ids are kept, so foreign keys stay valid across engines.

The source is read in one snapshot (a read transaction on SQLite, REPEATABLE READ
on PostgreSQL), so a collection writing meanwhile cannot make the copy
inconsistent. Each table is then verified: row count and a SHA-256 over a
canonical text rendering of its rows in key order, computed in Python from both
sides, so the two engines' storage formats (text vs `timestamp`, BLOB vs `bytea`)
cannot make equal data look different or different data look equal.

A target that already holds data of another history (a run or a series id that
means something else there) is refused before anything is written: a copy must
never silently merge two databases.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    func,
    inspect,
    select,
    tuple_,
)
from sqlalchemy.engine import Row
from sqlalchemy.types import TypeDecorator

from tracker.errors import TrackerError
from tracker.storage.engine import describe, write_transaction
from tracker.storage.points import insert_for
from tracker.storage.schema import (
    attempts,
    collector_state,
    fetches,
    metadata,
    payloads,
    points,
    rejections,
    runs,
    series,
    servers,
)

BATCH_ROWS = 20_000
BATCH_BYTES = 32 * 1024 * 1024
"""A batch also ends when its blobs reach this size, so archived bodies never fill memory."""

TABLES = (
    runs,
    attempts,
    payloads,
    fetches,
    rejections,
    series,
    points,
    servers,
    collector_state,
)
"""Parents before children, so every batch satisfies the foreign keys on its own."""

IDENTITY = {
    "runs": ("collector", "started_at"),
    "series": ("source", "target", "metric", "period"),
}
"""What an id means. The same id meaning something else in the target is another history."""


class OtherDataError(TrackerError):
    """The target is not empty and not (part of) a copy of this source: a usage mistake."""

    exit_code = 2


@dataclass(frozen=True)
class TableCopy:
    """One table after copying: what was written, and both sides' count and checksum."""

    name: str
    written: int
    removed: int
    source_rows: int
    source_checksum: str
    target_rows: int
    target_checksum: str

    @property
    def matches(self) -> bool:
        return (self.source_rows, self.source_checksum) == (self.target_rows, self.target_checksum)

    def line(self) -> str:
        done = f"{self.written} written, {self.removed} removed"
        if self.matches:
            return (
                f"{self.name}: {self.source_rows} rows ({done}), "
                f"checksum {self.source_checksum[:16]}: verified"
            )
        return (
            f"{self.name}: MISMATCH: source {self.source_rows} rows, checksum "
            f"{self.source_checksum[:16]}; target {self.target_rows} rows, checksum "
            f"{self.target_checksum[:16]} ({done})"
        )


@dataclass(frozen=True)
class Spec:
    """How one table is walked: its key, its compared columns, and its blobs."""

    table: Table
    key: tuple[Column[Any], ...]
    small: tuple[Column[Any], ...]
    blobs: tuple[Column[Any], ...]
    c_collation: bool
    """Order text keys bytewise on PostgreSQL (`COLLATE "C"`), as SQLite does."""

    @classmethod
    def of(cls, table: Table, c_collation: bool = True) -> Spec:
        table = _stored_form(table)
        key = tuple(table.primary_key.columns)
        blobs = tuple(c for c in table.columns if isinstance(c.type, LargeBinary))
        small = tuple(c for c in table.columns if c not in blobs)
        return cls(table, key, small, blobs, c_collation)

    @property
    def name(self) -> str:
        return self.table.name

    def ordered(self, dialect: str) -> list[ColumnElement[Any]]:
        if not (self.c_collation and dialect == "postgresql"):
            return list(self.key)
        return [c.collate("C") if isinstance(c.type, String) else c for c in self.key]

    def after(self, dialect: str, bound: tuple[Any, ...]) -> ColumnElement[bool]:
        keys = self.ordered(dialect)
        return keys[0] > bound[0] if len(keys) == 1 else tuple_(*keys) > bound

    def up_to(self, dialect: str, bound: tuple[Any, ...]) -> ColumnElement[bool]:
        keys = self.ordered(dialect)
        return keys[0] <= bound[0] if len(keys) == 1 else tuple_(*keys) <= bound

    def among(self, keys: Sequence[tuple[Any, ...]]) -> ColumnElement[bool]:
        if len(self.key) == 1:
            return self.key[0].in_([k[0] for k in keys])
        return tuple_(*self.key).in_(keys)

    def key_of(self, row: Row[Any] | dict[str, Any]) -> tuple[Any, ...]:
        mapping = row if isinstance(row, dict) else row._mapping
        return tuple(mapping[c.name] for c in self.key)


def _text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _moment(value: datetime) -> str:
    return (value.astimezone(UTC) if value.tzinfo else value).isoformat()


def _blob(value: bytes | bytearray | memoryview) -> str:
    return "sha256:" + hashlib.sha256(value).hexdigest()


_RENDER: dict[type, Callable[[Any], str]] = {
    type(None): lambda _: "\\N",
    bool: lambda value: "t" if value else "f",
    int: str,
    float: repr,
    str: _text,
    datetime: _moment,
    bytes: _blob,
    bytearray: _blob,
    memoryview: _blob,
}


def _stored_form(table: Table) -> Table:
    """The table with integer-backed types (`UnixTime`) read and written as the integers
    they store: both engines hold the same number, and no datetime is built per row."""
    if not any(_integer_backed(c.type) for c in table.columns):
        return table
    copy = table.to_metadata(MetaData())
    for column in copy.columns:
        if _integer_backed(column.type):
            column.type = column.type.impl_instance  # type: ignore[attr-defined]
    return copy


def _integer_backed(kind: Any) -> bool:
    return isinstance(kind, TypeDecorator) and isinstance(kind.impl_instance, Integer)


def canonical(value: Any) -> str:
    """One value as text, identical for both engines (PostgreSQL COPY's escapes; a
    blob as its SHA-256). Dispatch by exact type: this runs once per value copied."""
    render = _RENDER.get(type(value))
    return render(value) if render else _text(str(value))


class RowHash:
    """A running checksum over rows given in key order."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.rows = 0

    def add(self, values: Iterable[Any]) -> None:
        self.digest.update(("\t".join(map(canonical, values)) + "\n").encode())
        self.rows += 1

    def hexdigest(self) -> str:
        return self.digest.hexdigest()


def same_database(source: Engine, target: Engine) -> bool:
    a, b = source.url, target.url
    if a.get_backend_name() != b.get_backend_name():
        return False
    if a.get_backend_name() == "sqlite":
        if not a.database or not b.database or ":memory:" in (a.database, b.database):
            return False
        first, second = Path(a.database), Path(b.database)
        if first.exists() and second.exists():
            return first.samefile(second)
        return first.resolve() == second.resolve()
    return (a.host, a.port, a.database) == (b.host, b.port, b.database)


def copy_database(
    source: Engine,
    target: Engine,
    *,
    batch_rows: int = BATCH_ROWS,
    on_table: Callable[[TableCopy], None] | None = None,
) -> list[TableCopy]:
    """Make `target` (schema already current) an exact copy of `source`; verify each table."""
    if target.dialect.name not in ("sqlite", "postgresql"):
        raise TrackerError(f"db copy supports SQLite and PostgreSQL, not {target.dialect.name}")
    if same_database(source, target):
        raise OtherDataError(f"{describe(target)} is the source database itself")
    with _snapshot(source) as snapshot:
        _refuse_other_history(snapshot, target)  # before writing anything
        specs = [Spec.of(t) for t in TABLES]
        specs += [Spec.of(t) for t in _extra_tables(snapshot, target)]
        reports = []
        for spec in specs:
            report = _copy_table(snapshot, target, spec, batch_rows)
            reports.append(report)
            if on_table:
                on_table(report)
    return reports


@contextlib.contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """One read transaction for the whole copy: a consistent view however long it takes."""
    with engine.connect() as plain:
        connection = plain
        if engine.dialect.name == "postgresql":
            connection = plain.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        with connection.begin():
            yield connection


def _extra_tables(source: Connection, target: Engine) -> list[Table]:
    """Tables other programs keep in the same database (APScheduler's job store...).

    Created in the target from the source's reflected definition (with generic
    types, so SQLite's BLOB becomes `bytea`), and copied after the tracker's own.
    """
    ours = set(metadata.tables) | {"alembic_version"}
    names = [n for n in inspect(source).get_table_names() if n not in ours]
    if not names:
        return []
    reflected = MetaData()
    tables = []
    for name in sorted(names):
        table = Table(name, reflected, autoload_with=source)
        if not table.primary_key.columns:
            raise TrackerError(f"table {name} has no primary key: db copy cannot resume it")
        tables.append(table)
    portable = MetaData()
    for table in tables:
        copy = table.to_metadata(portable)
        for column in copy.columns:
            with contextlib.suppress(NotImplementedError):  # keep a type with no generic form
                column.type = column.type.as_generic()
    portable.create_all(target, checkfirst=True)
    return [portable.tables[t.name] for t in tables]


def _refuse_other_history(source: Connection, target: Engine) -> None:
    """Every run and series id in the target must mean the same as in the source."""
    for table in (runs, series):
        columns = [table.c.id, *(table.c[name] for name in IDENTITY[table.name])]
        with target.connect() as connection:
            result = connection.execution_options(yield_per=BATCH_ROWS).execute(
                select(*columns).order_by(table.c.id)
            )
            for chunk in result.partitions():
                ids = [row.id for row in chunk]
                theirs = {
                    row.id: tuple(row)
                    for row in source.execute(select(*columns).where(table.c.id.in_(ids)))
                }
                for row in chunk:
                    if theirs.get(row.id) != tuple(row):
                        raise OtherDataError(_other_history(target, table.name, row, theirs))


def _other_history(target: Engine, name: str, row: Row[Any], theirs: dict[Any, Any]) -> str:
    what = ", ".join(canonical(v) for v in tuple(row)[1:])
    found = theirs.get(row.id)
    there = ", ".join(canonical(v) for v in found[1:]) if found else "no such id"
    return (
        f"{describe(target)} holds other data ({name} id {row.id} is {what} there, "
        f"{there} in the source): copy into an empty database"
    )


def _copy_table(source: Connection, target: Engine, spec: Spec, batch_rows: int) -> TableCopy:
    checksum = RowHash()
    written = removed = 0
    previous: tuple[Any, ...] | None = None
    for rows in _source_batches(source, spec, batch_rows):
        for row in rows:
            checksum.add(row[c.name] for c in spec.table.columns)
        last = spec.key_of(rows[-1])
        done = _apply_batch(target, spec, rows, previous, last)
        written, removed = written + done[0], removed + done[1]
        previous = last
    removed += _apply_batch(target, spec, [], previous, None)[1]
    target_rows, target_checksum = _checksum(target, spec)
    return TableCopy(
        spec.name,
        written,
        removed,
        checksum.rows,
        checksum.hexdigest(),
        target_rows,
        target_checksum,
    )


def _source_batches(
    source: Connection, spec: Spec, batch_rows: int
) -> Iterator[list[dict[str, Any]]]:
    """Rows in key order, in batches bounded by count and by blob bytes.

    The blobs are not streamed with the rest: they are fetched per batch by key, so
    the ordered scan stays small and a batch's memory stays bounded.
    """
    sizes = [func.coalesce(func.length(c), 0).label(f"_size_{c.name}") for c in spec.blobs]
    query = select(*spec.small, *sizes).order_by(*spec.ordered(source.dialect.name))
    result = source.execution_options(yield_per=min(batch_rows, 5000)).execute(query)
    batch: list[dict[str, Any]] = []
    size = 0
    for row in result:
        mapping = row._mapping
        batch.append({c.name: mapping[c.name] for c in spec.small})
        size += sum(int(mapping[s.name]) for s in sizes)
        if len(batch) >= batch_rows or size >= BATCH_BYTES:
            yield _with_blobs(source, spec, batch)
            batch, size = [], 0
    if batch:
        yield _with_blobs(source, spec, batch)


def _with_blobs(
    source: Connection, spec: Spec, batch: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    if not spec.blobs:
        return batch
    keys = [spec.key_of(row) for row in batch]
    found: dict[tuple[Any, ...], Any] = {}
    for part in _parts(keys, 500):
        query = select(*spec.key, *spec.blobs).where(spec.among(part))
        for stored in source.execute(query):
            found[spec.key_of(stored)] = stored._mapping
    for row, key in zip(batch, keys, strict=True):
        for column in spec.blobs:
            row[column.name] = found[key][column.name]
    return batch


def _apply_batch(
    target: Engine,
    spec: Spec,
    rows: list[dict[str, Any]],
    previous: tuple[Any, ...] | None,
    last: tuple[Any, ...] | None,
) -> tuple[int, int]:
    """Make the target's key range (previous, last] equal to `rows`; one transaction.

    `last=None` is the open end after the source's last row. Returns (written, removed).
    """
    with write_transaction(target) as connection:
        dialect = connection.dialect.name
        query = select(*spec.small)
        if previous is not None:
            query = query.where(spec.after(dialect, previous))
        if last is not None:
            query = query.where(spec.up_to(dialect, last))
        existing = {spec.key_of(row): tuple(row) for row in connection.execute(query)}
        wanted = {spec.key_of(row): row for row in rows}
        changed = [
            row
            for key, row in wanted.items()
            if existing.get(key) != tuple(row[c.name] for c in spec.small)
        ]
        extra = [key for key in existing if key not in wanted]
        for part in _parts(extra, 500):
            connection.execute(delete(spec.table).where(spec.among(part)))
        if changed:
            connection.execute(_upsert(dialect, spec), changed)
        if changed and dialect == "postgresql":
            _advance_sequence(connection, spec)
    return len(changed), len(extra)


def _upsert(dialect: str, spec: Spec) -> Any:
    statement = insert_for(dialect, spec.table)
    keys = [c.name for c in spec.key]
    others = {c.name: statement.excluded[c.name] for c in spec.table.columns if c.name not in keys}
    if not others:
        return statement.on_conflict_do_nothing(index_elements=keys)
    return statement.on_conflict_do_update(index_elements=keys, set_=others)


def _advance_sequence(connection: Connection, spec: Spec) -> None:
    """Rows came with their ids, so the id sequence must move past them for new inserts."""
    if len(spec.key) != 1 or not spec.key[0].autoincrement or isinstance(spec.key[0].type, String):
        return
    column = spec.key[0]
    highest = select(func.max(column)).scalar_subquery()
    sequence = func.pg_get_serial_sequence(spec.table.name, column.name)
    connection.execute(select(func.setval(sequence, func.coalesce(highest, 0) + 1, False)))


def _checksum(engine: Engine, spec: Spec) -> tuple[int, str]:
    checksum = RowHash()
    with engine.connect() as connection:
        query = select(*spec.table.columns).order_by(*spec.ordered(connection.dialect.name))
        size = 200 if spec.blobs else 5000
        for row in connection.execution_options(yield_per=size).execute(query):
            checksum.add(row)
    return checksum.rows, checksum.hexdigest()


def _parts(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def copy_summary(reports: Sequence[TableCopy], seconds: float) -> str:
    rows = sum(r.source_rows for r in reports)
    written = sum(r.written for r in reports)
    return (
        f"{len(reports)} tables, {rows} rows verified ({written} written this time) "
        f"in {seconds:.1f} s"
    )


__all__ = [
    "BATCH_ROWS",
    "OtherDataError",
    "TableCopy",
    "canonical",
    "copy_database",
    "copy_summary",
    "same_database",
]
