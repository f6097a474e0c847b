"""The SQL of `tracker history`: writing one archive import, and what each source holds.

An import is one transaction holding its `runs` row and every point, so a file is
either wholly in the database or not at all. Points already stored are kept (ON
CONFLICT DO NOTHING): an archive is a finished record, the first import of a
reading wins, and a second import of the same file adds nothing. An import that
adds nothing is rolled back, `runs` row included: `make run` imports the shipped
archive every time, and a run per no-op would bury the collectors' runs in
`tracker status`; the points keep naming the import that wrote them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import SQLAlchemyError

from tracker.errors import StorageError
from tracker.storage.engine import describe, short_reason, write_transaction
from tracker.storage.points import upsert_rows
from tracker.storage.schema import OBSERVATIONS_FROM, points, runs, series
from tracker.storage.store import insert_run


class _NothingAdded(Exception):
    """Raised inside the transaction to roll it back."""


def write_import(
    engine: Engine,
    collector: str,
    message: str,
    now: datetime,
    rows: Iterable[Mapping[str, Any]],
) -> tuple[int, int | None]:
    """Insert the rows (source, platform, target, metric, period, observed_at, value)
    that are not stored yet, under a new `runs` row; returns (added, run id or None)."""
    try:
        with write_transaction(engine) as connection:
            run_id = insert_run(connection, collector, now, "ok", finished_at=now, message=message)
            added = upsert_rows(connection, ((False, {**row, "run_id": run_id}) for row in rows))
            if added == 0:
                raise _NothingAdded
            connection.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(targets_ok=1, observations_written=added)
            )
            return added, run_id
    except _NothingAdded:
        return 0, None
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot write to {describe(engine)}: {short_reason(exc)}") from None


@dataclass(frozen=True)
class Extent:
    rows: int
    first: datetime
    last: datetime


def source_extents(engine: Engine, sources: Sequence[str]) -> dict[str, Extent]:
    """Points per source and their first and last time (sources without points are absent)."""
    observed = points.c.observed_at
    query = (
        select(series.c.source, func.count(), func.min(observed), func.max(observed))
        .select_from(OBSERVATIONS_FROM)
        .where(series.c.source.in_(list(sources)))
        .group_by(series.c.source)
    )
    with engine.connect() as connection:
        return {
            str(source): Extent(int(count), first, last)
            for source, count, first, last in connection.execute(query)
        }
