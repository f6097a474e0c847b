"""The last run of each job, for `tracker schedule` to catch up a cut-short collection.

SQL lives in `storage/`: the scheduler asks this question and gets plain rows back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from tracker.storage.schema import runs


@dataclass(frozen=True)
class LatestRun:
    """The newest `runs` row of one collector (or the crawl)."""

    collector: str
    id: int
    started_at: datetime
    status: str


def latest_runs(engine: Engine, names: Sequence[str]) -> list[LatestRun]:
    """The newest run of each of `names` that has run at all (highest id: started last)."""
    latest = (
        select(runs.c.collector, func.max(runs.c.id).label("id"))
        .where(runs.c.collector.in_(names))
        .group_by(runs.c.collector)
        .subquery()
    )
    query = select(runs.c.collector, runs.c.id, runs.c.started_at, runs.c.status).join(
        latest, runs.c.id == latest.c.id
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [LatestRun(row.collector, row.id, row.started_at, row.status) for row in rows]
