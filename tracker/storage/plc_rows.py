"""The queries of the `plc` collector, which writes its pages itself (resumable paging).

The PLC export is paged across runs from a stored cursor, each page committed
with its counts, so the collector reaches the database directly; its SQL lives
here, as all SQL does under `storage/`.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, func, select, update

from tracker.storage.schema import attempts, fetches, payloads, points, runs, series


def has_points(engine: Engine, source: str) -> bool:
    """Whether any series of this source holds a point."""
    query = (
        select(points.c.series_id)
        .join(series, series.c.id == points.c.series_id)
        .where(series.c.source == source)
        .limit(1)
    )
    with engine.connect() as connection:
        return connection.execute(query).first() is not None


def running_run(engine: Engine, collector: str, pid: int) -> int | None:
    """The newest run of this collector that process `pid` has open, if any."""
    query = (
        select(runs.c.id)
        .where(runs.c.collector == collector, runs.c.status == "running", runs.c.pid == pid)
        .order_by(runs.c.id.desc())
        .limit(1)
    )
    with engine.connect() as connection:
        run_id = connection.execute(query).scalar()
    return None if run_id is None else int(run_id)


def set_newest_attempt_observations(
    connection: Connection, run_id: int, source: str, observations: int
) -> None:
    """The observation count of the run's newest attempt of `source` (the one just
    inserted in this transaction: pages are written one by one)."""
    newest = select(func.max(attempts.c.id)).where(
        attempts.c.run_id == run_id, attempts.c.source == source
    )
    connection.execute(
        update(attempts)
        .where(attempts.c.id == newest.scalar_subquery())
        .values(observations=observations)
    )


def answered_page_digests(connection: Connection, source: str, kind: str) -> list[str | None]:
    """The archived bodies of every good answer of this kind, in the order fetched
    (None where a fetch has no body stored)."""
    query = (
        select(payloads.c.sha256)
        .select_from(fetches)
        .join(attempts, attempts.c.id == fetches.c.attempt_id)
        .outerjoin(payloads, payloads.c.id == fetches.c.payload_id)
        .where(
            attempts.c.source == source,
            fetches.c.kind == kind,
            fetches.c.status == 200,
            fetches.c.error_kind.is_(None),
        )
        .order_by(attempts.c.started_at, attempts.c.id, fetches.c.seq)
    )
    return list(connection.execute(query).scalars())


def delete_points_of(connection: Connection, source: str) -> None:
    """Every point of every series of this source (the series themselves stay)."""
    of_source = select(series.c.id).where(series.c.source == source)
    connection.execute(points.delete().where(points.c.series_id.in_(of_source)))
