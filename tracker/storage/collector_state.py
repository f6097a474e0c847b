"""A collector's cursor and the counts it adds up, written in one transaction.

An incremental collector that pages a long log (the PLC directory export) adds
each page's counts to stored totals and moves its cursor past the page. Both
happen in the caller's transaction: a kill before the commit loses the page
whole (it is fetched again), a kill after it loses nothing, so nothing is ever
counted twice or skipped.

The cursor is written compare-and-set: a page is committed only if the cursor is
still the one the page was fetched from, so two runs paging at once (which the
collection lock already prevents) could still not count a page twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Insert, select, update

from tracker.model import utc
from tracker.storage.points import SeriesIds, insert_for
from tracker.storage.schema import collector_state, points

PointKey = tuple[str, datetime]
"""(target, observed_at) of a point within one (source, metric, period)."""


class CursorMoved(Exception):
    """The stored cursor is not the one this page was fetched from: not committed."""


def read_state(engine: Engine | Connection, collector: str, key: str) -> str | None:
    query = select(collector_state.c.value).where(
        collector_state.c.collector == collector, collector_state.c.key == key
    )
    if isinstance(engine, Connection):
        value = engine.execute(query).scalar()
    else:
        with engine.connect() as connection:
            value = connection.execute(query).scalar()
    return None if value is None else str(value)


def swap_state(
    connection: Connection,
    collector: str,
    key: str,
    expected: str | None,
    value: str,
    now: datetime,
) -> None:
    """Set the value if it is still `expected` (None: not stored yet); else CursorMoved."""
    column = collector_state.c
    if expected is None:
        if read_state(connection, collector, key) is not None:
            raise CursorMoved(f"{collector}.{key} was set meanwhile")
        connection.execute(
            collector_state.insert().values(
                collector=collector, key=key, value=value, updated_at=utc(now)
            )
        )
        return
    result = connection.execute(
        update(collector_state)
        .where(column.collector == collector, column.key == key, column.value == expected)
        .values(value=value, updated_at=utc(now))
    )
    if result.rowcount != 1:
        raise CursorMoved(f"{collector}.{key} changed meanwhile")


def delete_state(connection: Connection, collector: str, key: str | None = None) -> None:
    statement = collector_state.delete().where(collector_state.c.collector == collector)
    if key is not None:
        statement = statement.where(collector_state.c.key == key)
    connection.execute(statement)


def _adding_upsert(dialect: str) -> Insert:
    statement = insert_for(dialect, points)
    upsert: Insert = statement.on_conflict_do_update(
        index_elements=["series_id", "observed_at"],
        set_={"value": points.c.value + statement.excluded.value, "run_id": None},
    )
    return upsert


def add_to_points(
    connection: Connection,
    ids: SeriesIds,
    *,
    source: str,
    platform: str,
    metric: str,
    period: str,
    counts: Mapping[PointKey, int],
) -> int:
    """Add each count to its point (created at the count if new); returns points touched.

    The points keep `run_id` NULL: their value is the sum of many runs' pages, so
    no run owns it, and `tracker reparse`, which drops and rebuilds the points a
    run wrote, leaves them alone.
    """
    rows: list[dict[str, Any]] = []
    for (target, observed_at), count in sorted(counts.items()):
        if count == 0:
            continue
        series_id = ids.resolve(connection, (source, target, metric, period), platform)
        rows.append(
            {
                "series_id": series_id,
                "observed_at": utc(observed_at),
                "value": count,
                "run_id": None,
            }
        )
    if rows:
        connection.execute(_adding_upsert(connection.dialect.name), rows)
    return len(rows)
