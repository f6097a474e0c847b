"""The tables, as SQLAlchemy Core metadata (the migrations in `migrations/` build the same).

Time stamps are UTC at one-second resolution. SQLite stores them as text
`YYYY-MM-DD HH:MM:SS`, which sorts correctly, reads well in any SQLite browser,
and gives the UTC day as its first ten characters; PostgreSQL uses `timestamp`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import TypeDecorator, TypeEngine

_SQLITE_DATETIME = sqlite.DATETIME(  # type: ignore[no-untyped-call]
    storage_format="%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d",
    regexp=r"(\d+)-(\d+)-(\d+)[ T](\d+):(\d+):(\d+)",
)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, naive UTC in the database."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SQLITE_DATETIME)
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.replace(microsecond=0)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class UnixTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, whole Unix seconds in the database.

    Used for `points.observed_at` only: that table holds millions of rows, and an
    integer key keeps each row small and each bulk upsert cheap. The
    `observations` view shows it as UTC text for people.
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return unix_seconds(value)

    def process_result_value(self, value: int | None, dialect: Dialect) -> datetime | None:
        return None if value is None else datetime.fromtimestamp(value, UTC)


def unix_seconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


Id = BigInteger().with_variant(Integer(), "sqlite")
"""64-bit keys on PostgreSQL; INTEGER PRIMARY KEY (the rowid) on SQLite."""

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

runs = Table(
    "runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("collector", String(64), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime()),
    # running -> ok | partial | failed | interrupted
    Column("status", String(16), nullable=False),
    Column("targets_ok", Integer, nullable=False, default=0),
    Column("targets_failed", Integer, nullable=False, default=0),
    Column("targets_skipped", Integer, nullable=False, default=0),
    Column("observations_written", Integer, nullable=False, default=0),
    Column("pid", Integer),
    Column("host", String(255)),
    Column("message", Text),
    Index(None, "collector", "started_at"),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_id", Id, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("source", String(32), nullable=False),
    Column("target", String(255), nullable=False),
    Column("outcome", String(16), nullable=False),  # ok | failed | skipped
    Column("error_kind", String(32)),
    Column("error_detail", Text),
    Column("platform", String(64)),
    Column("software", String(64)),
    Column("software_version", String(128)),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("observations", Integer, nullable=False, default=0),
    Index(None, "source", "target", "started_at"),
    Index(None, "run_id"),
)

payloads = Table(
    "payloads",
    metadata,
    # An integer key: the fetch log names a body by it (a few bytes a row, where the
    # hex digest took 64 and its index as much again: at crawl scale most of the log).
    Column("id", Id, primary_key=True, autoincrement=True),
    # The sha256 of the body as received: an identical body is stored once.
    Column("sha256", String(64), nullable=False, unique=True),
    Column("size", Integer, nullable=False),  # bytes as received
    Column("codec", String(8), nullable=False),  # zlib | zdelta | setfull | setdiff
    Column("body", LargeBinary, nullable=False),
    Column("first_seen", UtcDateTime(), nullable=False),
    # A delta's base: the row it is stored against (payload_codec.py). No foreign key:
    # `db copy` writes the rows in key order, bases after some of their deltas, and
    # `db prune` keeps every base a kept row needs (prune.py); the index is for that.
    Column("base_sha256", String(64)),
    Column("depth", Integer, nullable=False, server_default="0"),
    Index(None, "base_sha256"),
)

fetches = Table(
    "fetches",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("attempt_id", Id, ForeignKey("attempts.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("method", String(8), nullable=False),
    Column("url", Text, nullable=False),
    Column("final_url", Text),  # where the answer came from, when redirects were followed
    Column("status", Integer),
    Column("error_kind", String(32)),
    Column("error_detail", Text),
    Column("elapsed_ms", Integer, nullable=False),
    Column("bytes", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("content_type", String(255)),
    Column("fetched_at", UtcDateTime(), nullable=False),
    Column("payload_id", Id, ForeignKey("payloads.id", ondelete="SET NULL")),
    Index(None, "attempt_id", "seq"),
    Index(None, "payload_id"),
)

rejections = Table(
    "rejections",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("attempt_id", Id, ForeignKey("attempts.id", ondelete="CASCADE"), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("raw_value", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Index(None, "attempt_id"),
)

series = Table(
    "series",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source", String(32), nullable=False),
    Column("platform", String(64), nullable=False),  # the latest seen; a server may switch
    Column("target", String(255), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("period", String(8), nullable=False),  # '' | day | week
    UniqueConstraint("source", "target", "metric", "period"),
)

points = Table(
    "points",
    metadata,
    Column("series_id", Id, ForeignKey("series.id", ondelete="CASCADE"), primary_key=True),
    Column("observed_at", UnixTime(), primary_key=True),
    Column("value", BigInteger, nullable=False),
    Column("run_id", Id, ForeignKey("runs.id", ondelete="SET NULL")),
    sqlite_with_rowid=False,
)
"""One number per series and instant, clustered by series and time (no rowid on SQLite):
about 35 bytes a row instead of 170 with the names repeated, and bulk upserts
write one B-tree instead of a table and an index."""

OBSERVATION_COLUMNS = {
    "source": series.c.source,
    "platform": series.c.platform,
    "target": series.c.target,
    "metric": series.c.metric,
    "period": series.c.period,
    "observed_at": points.c.observed_at,
    "value": points.c.value,
    "run_id": points.c.run_id,
}
"""Observations as code reads them: straight from the base tables, so filters on
`observed_at` and the series' names use the keys. People use the `observations` view."""

OBSERVATIONS_FROM = points.join(series, points.c.series_id == series.c.id)

SERIES_KEY = ("source", "target", "metric", "period")

servers = Table(
    "servers",
    metadata,
    # Every fediverse server the crawl knows (docs/crawl.md): its state, why, and when
    # it is due again. Times are Unix seconds: tens of thousands of rows, read whole.
    Column("host", String(255), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("software", String(64)),
    Column("first_seen", UnixTime(), nullable=False),
    Column("last_seen", UnixTime()),
    Column("last_checked", UnixTime()),
    Column("discovered_from", String(255)),
    Column("failures", Integer, nullable=False, default=0),
    Column("failing_since", UnixTime()),
    Column("last_error", String(32)),
    Column("next_check", UnixTime(), nullable=False),
    Column("moved_to", String(255)),
    Column("cluster", String(255)),
    Index(None, "state", "next_check"),
)

collector_state = Table(
    "collector_state",
    metadata,
    # Small named values an incremental collector keeps between runs, written in the
    # same transaction as the rows they describe (the PLC export cursor with the day
    # counts of its page: tracker/storage/collector_state.py).
    Column("collector", String(32), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
