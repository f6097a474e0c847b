"""Loading observations for analysis, in bounded memory.

`pd.read_sql` of 10M rows was measured at ~2.7 GB, mostly Python strings. Here
the names stay in a small `series` frame, and points stream in chunks into
preallocated integer arrays (series id, Unix time, value): 20 bytes a point.
The heavy reductions (daily last value, totals) are then vectorised over those
arrays rather than looped in Python.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import Connection, Engine, select

from tracker.analysis.conventions import timestamps
from tracker.storage.filters import Filters
from tracker.storage.schema import series, unix_seconds

CHUNK = 200_000
EVERYTHING = Filters()
SERIES_COLUMNS = ("source", "platform", "target", "metric", "period")


@dataclass
class Points:
    """Raw observations: `series` (names, indexed by series id) and a sorted point frame.

    `frame` has columns series_id (int64), t (Unix seconds, int64), value (int64),
    sorted by series then time.
    """

    series: pd.DataFrame
    frame: pd.DataFrame

    def of(self, series_ids: pd.Index | list[int]) -> Points:
        keep = self.frame["series_id"].isin(series_ids)
        return Points(self.series.loc[self.series.index.intersection(series_ids)], self.frame[keep])


def load_series(engine: Engine, filters: Filters = EVERYTHING) -> pd.DataFrame:
    """The series matching the filters' names (not their time range), indexed by id."""
    query = filters.apply_names(
        select(series.c.id, *(series.c[name] for name in SERIES_COLUMNS))
    ).order_by(series.c.id)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    frame = pd.DataFrame(rows, columns=["series_id", *SERIES_COLUMNS])
    return frame.set_index("series_id")


def load_points(
    engine: Engine, filters: Filters = EVERYTHING, ids: Sequence[int] | None = None
) -> Points:
    """Points of the matching series (or exactly `ids`) in the time range, bounded memory.

    The rows are counted first, to size the arrays once, then selected; both
    statements read one snapshot of the database (`_snapshot`), so a collection
    committing meanwhile neither cuts rows off nor adds half of its own.
    """
    meta = load_series(engine, filters)
    if ids is not None:
        meta = meta.loc[meta.index.intersection(list(ids))]
    if meta.empty:
        return Points(meta, _empty_points())
    where = _points_where([int(i) for i in meta.index], filters)
    with _snapshot(engine) as connection:
        count = f"SELECT COUNT(*) FROM points WHERE {where}"  # noqa: S608 - integers only
        total = int(connection.exec_driver_sql(count).scalar() or 0)
        columns = [np.empty(total, dtype=np.int64) for _ in range(3)]
        filled = 0
        sql = (
            f"SELECT series_id, observed_at, value FROM points WHERE {where}"  # noqa: S608
            " ORDER BY series_id, observed_at"
        )
        for chunk in _driver_rows(connection, sql):
            flat = itertools.chain.from_iterable(chunk)
            block = np.fromiter(flat, dtype=np.int64, count=3 * len(chunk)).reshape(-1, 3)
            columns = _with_room(columns, filled + len(block))
            for index, column in enumerate(columns):
                column[filled : filled + len(block)] = block[:, index]
            filled += len(block)
    frame = pd.DataFrame(
        {
            name: column[:filled]
            for name, column in zip(("series_id", "t", "value"), columns, strict=True)
        },
        copy=False,
    )
    return Points(meta, frame)


def _snapshot(engine: Engine) -> Connection:
    """A connection whose statements all read one snapshot of the database.

    PostgreSQL's default (READ COMMITTED) gives each statement its own snapshot:
    rows committed between the count and the select would make them disagree, so
    the reading transaction is REPEATABLE READ (read-only: nothing can conflict).
    SQLite already reads one snapshot from the first statement of its `BEGIN`
    (see `tracker.storage.engine`) until the connection closes.
    """
    connection = engine.connect()
    if engine.dialect.name == "postgresql":
        connection = connection.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
    return connection


def _with_room(columns: list[npt.NDArray[np.int64]], size: int) -> list[npt.NDArray[np.int64]]:
    """The columns, grown to hold `size` rows if the count fell short: never cut rows."""
    if size <= len(columns[0]):
        return columns
    return [np.resize(column, max(size, 2 * len(column))) for column in columns]


def _points_where(ids: list[int], filters: Filters) -> str:
    """The WHERE clause, built only from integers (ids and Unix seconds), so safe as text."""
    clauses = [f"series_id IN ({','.join(str(int(i)) for i in ids)})"]
    start, end = filters.bounds()
    if start is not None:
        clauses.append(f"observed_at >= {unix_seconds(start)}")
    if end is not None:
        clauses.append(f"observed_at < {unix_seconds(end)}")
    return " AND ".join(clauses)


def _driver_rows(connection: Connection, sql: str) -> Iterator[list[tuple[int, int, int]]]:
    """Rows as plain tuples straight from the driver, a chunk at a time.

    SQLAlchemy's Row objects cost more than the query itself on millions of points
    (measured: 28 s of 37 for 10M). PostgreSQL gets a server-side cursor, so the rows
    stream instead of arriving all at once.
    """
    raw = connection.connection.driver_connection
    assert raw is not None
    if connection.dialect.name == "postgresql":
        cursor = raw.cursor(name=f"tracker_points_{uuid.uuid4().hex}")
    else:
        cursor = raw.cursor()
    try:
        cursor.execute(sql)
        while rows := cursor.fetchmany(CHUNK):
            yield rows
    finally:
        cursor.close()


def _empty_points() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "series_id": np.empty(0, np.int64),
            "t": np.empty(0, np.int64),
            "value": np.empty(0, np.int64),
        }
    )


def load_observations(engine: Engine, filters: Filters = EVERYTHING) -> pd.DataFrame:
    """Raw observations as one tidy frame (for exploring a few series in a notebook).

    Columns: source, platform, target, metric, period, observed_at (UTC), value.
    """
    loaded = load_points(engine, filters)
    return with_names(loaded.frame, loaded.series).assign(
        observed_at=lambda f: pd.to_datetime(f.pop("t"), unit="s", utc=True)
    )[[*SERIES_COLUMNS, "observed_at", "value"]]


def with_names(frame: pd.DataFrame, meta: pd.DataFrame) -> pd.DataFrame:
    """A frame keyed by `series_id` with the series' names joined in (and `day` as a date)."""
    named = frame.join(meta, on="series_id")
    if "day" in named.columns:
        named["day"] = timestamps(named["day"])
    return named


__all__ = [
    "Points",
    "load_observations",
    "load_points",
    "load_series",
    "with_names",
]
