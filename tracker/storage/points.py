"""Upserting observations: resolve each series once, then write its points in bulk.

An observation is stored as a point (series id, observed_at, value) of a series
(source, target, metric, period, and its platform). Collecting the same period
again updates the point; it never adds a second one.

Measured on this machine, SQLAlchemy's per-row parameter processing took three
quarters of a bulk import; on SQLite the statement Core compiled is therefore
run through the driver's executemany with plain tuples (times as Unix seconds,
exactly as `UnixTime` stores them).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

from sqlalchemy import (
    Connection,
    Insert,
    Table,
    and_,
    bindparam,
    delete,
    func,
    select,
    update,
)

from tracker.model import Observation, utc
from tracker.storage.schema import points, series, unix_seconds

BATCH = 50_000
SeriesKey = tuple[str, str, str, str]  # source, target, metric, period


_POINT_KEY = operator.itemgetter(0, 1)


def insert_for(dialect: str, table: Table) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (SQLite and PostgreSQL agree on it)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


@functools.cache
def point_upsert(dialect: str, replace: bool) -> Insert:
    """INSERT a point that updates (`replace`) or keeps an existing value."""
    statement = insert_for(dialect, points)
    keys = ["series_id", "observed_at"]
    if replace:
        excluded = statement.excluded
        return statement.on_conflict_do_update(  # type: ignore[no-any-return]
            index_elements=keys, set_={"value": excluded.value, "run_id": excluded.run_id}
        )
    return statement.on_conflict_do_nothing(index_elements=keys)  # type: ignore[no-any-return]


@functools.cache
def _sqlite_sql(replace: bool) -> str:
    from sqlalchemy.dialects import sqlite

    compiled = point_upsert("sqlite", replace).compile(
        dialect=sqlite.dialect(), column_keys=["series_id", "observed_at", "value", "run_id"]
    )
    if tuple(compiled.positiontup or ()) != ("series_id", "observed_at", "value", "run_id"):
        raise RuntimeError(f"unexpected parameter order {compiled.positiontup}")
    return str(compiled)


_FIND_SERIES = select(series.c.id, series.c.platform).where(
    and_(*(series.c[name] == bindparam(name) for name in ("source", "target", "metric", "period")))
)


PlatformClaim = Literal["target", "series", "guess"]
"""What a row's platform may change. `target`: a parser's evidence about the server
(NodeInfo, the config), which relabels every series of that target; `series`: an
imported row, which relabels its own series only (a file may label its series as it
likes); `guess`: nothing (it may only name a new series)."""


class SeriesIds:
    """Series ids by key: those known committed, and those of the open transaction.

    Ids created in a transaction that rolls back must be forgotten, so the writer
    calls `commit()` or `rollback()` after each transaction. The cache holds each
    series' platform as the database has it.
    """

    def __init__(self, *, update_platform: bool = True) -> None:
        self.committed: dict[SeriesKey, tuple[int, str]] = {}
        self.pending: dict[SeriesKey, tuple[int, str]] = {}
        self.update_platform = update_platform

    def commit(self) -> None:
        self.committed.update(self.pending)
        self.pending.clear()

    def rollback(self) -> None:
        self.pending.clear()

    def resolve(
        self,
        connection: Connection,
        key: SeriesKey,
        platform: str,
        claim: PlatformClaim = "series",
    ) -> int:
        """The series' id, the series created if new.

        A platform changes only on evidence: a fediverse server read through the
        Mastodon API because its NodeInfo failed once must not relabel its history
        (and back at the next good run). A guess names a new series after the
        target's other series, when it has any.
        """
        renames = claim != "guess" and self.update_platform
        cached = self.pending.get(key) or self.committed.get(key)
        if cached is not None and (cached[1] == platform or not renames):
            return cached[0]
        source, target, metric, period = key
        params = {"source": source, "target": target, "metric": metric, "period": period}
        row = connection.execute(_FIND_SERIES, params).first()
        if row is None:
            if claim == "guess":
                platform = _target_platform(connection, source, target) or platform
            inserted = connection.execute(series.insert(), {**params, "platform": platform})
            primary_key = inserted.inserted_primary_key
            assert primary_key is not None
            series_id = int(primary_key[0])
        elif renames and row.platform != platform:  # a switch on evidence: keep the latest
            series_id = int(row.id)
            if claim == "target":
                self._relabel_target(connection, source, target, platform)
            else:
                connection.execute(
                    update(series).where(series.c.id == series_id).values(platform=platform)
                )
        else:
            series_id, platform = int(row.id), str(row.platform)
        self.pending[key] = (series_id, platform)
        return series_id

    def _relabel_target(
        self, connection: Connection, source: str, target: str, platform: str
    ) -> None:
        """Every series of the target gets the platform (also those a guess once named,
        whose metric the evidence does not cover); their cached ids are forgotten so
        they are read again, whether this transaction commits or not."""
        connection.execute(
            update(series)
            .where(series.c.source == source, series.c.target == target)
            .where(series.c.platform != platform)
            .values(platform=platform)
        )
        for cache in (self.committed, self.pending):
            for stale in [k for k in cache if k[0] == source and k[1] == target]:
                del cache[stale]


def _target_platform(connection: Connection, source: str, target: str) -> str | None:
    """The platform most of a target's series have, if it has any."""
    return connection.execute(
        select(series.c.platform)
        .where(series.c.source == source, series.c.target == target)
        .group_by(series.c.platform)
        .order_by(func.count().desc(), series.c.platform)
        .limit(1)
    ).scalar()


def observation_rows(
    source: str, run_id: int | None, items: Iterable[Observation]
) -> Iterator[tuple[bool, dict[str, Any]]]:
    """Observations as (replace, row) pairs in the shape `upsert_rows` takes."""
    for item in items:
        yield (
            item.replace,
            {
                "source": source,
                "platform": item.platform,
                "target": item.target,
                "metric": item.metric,
                "period": item.period,
                "observed_at": utc(item.observed_at),
                "value": item.value,
                "run_id": run_id,
                "platform_claim": "target" if item.platform_known else "guess",
            },
        )


def upsert_rows(
    connection: Connection,
    rows: Iterable[tuple[bool, Mapping[str, Any]]],
    ids: SeriesIds | None = None,
) -> int:
    """Upsert (replace, row) pairs in batches; returns points inserted or changed."""
    ids = ids if ids is not None else SeriesIds()
    sqlite = connection.dialect.name == "sqlite"
    pending: dict[bool, list[Any]] = {True: [], False: []}

    def flush(flag: bool) -> int:
        batch = pending[flag]
        if not batch:
            return 0
        pending[flag] = []
        if sqlite:
            # In key order, each B-tree page is visited once per batch instead of once
            # per row (measured: 1.8x faster for readings that arrive time-major).
            # The sort is stable, so of two rows with one key the later still wins.
            batch.sort(key=_POINT_KEY)
            result = connection.exec_driver_sql(_sqlite_sql(flag), batch)
        else:
            result = connection.execute(point_upsert(connection.dialect.name, flag), batch)
        count = result.rowcount
        return count if count is not None and count >= 0 else len(batch)

    written = 0
    for flag, row in rows:
        key = (row["source"], row["target"], row["metric"], row["period"])
        series_id = ids.resolve(
            connection, key, row["platform"], row.get("platform_claim", "series")
        )
        if sqlite:
            point: Any = (series_id, unix_seconds(row["observed_at"]), row["value"], row["run_id"])
        else:
            point = {
                "series_id": series_id,
                "observed_at": row["observed_at"],
                "value": row["value"],
                "run_id": row["run_id"],
            }
        pending[flag].append(point)
        if len(pending[flag]) >= BATCH:
            written += flush(flag)
    return written + flush(True) + flush(False)


def delete_run_points(connection: Connection, run_id: int, source: str) -> None:
    """The points one run wrote for one source (rows a later run rewrote are not its own)."""
    of_source = select(series.c.id).where(series.c.source == source)
    connection.execute(
        delete(points).where(points.c.run_id == run_id, points.c.series_id.in_(of_source))
    )
