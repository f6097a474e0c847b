"""`load_points` reads the count and the rows in one snapshot (issue 10, item 12).

On PostgreSQL each statement of a READ COMMITTED transaction sees the rows committed
before it began, so a writer committing between the count and the select made the
select return more rows than the arrays were sized for, and the last ones (the
newest readings of the last series, whatever was inserted) were cut silently. The
test commits rows from another connection exactly there, on the real server the
suite provides, and on SQLite as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, insert, select

from tracker.analysis import load
from tracker.storage.engine import open_database
from tracker.storage.schema import points, series

T0 = datetime(2024, 1, 1, tzinfo=UTC)
READINGS = 50


def filled(url: str) -> tuple[Engine, list[int], list[tuple[int, int, int]]]:
    """Two series of 50 daily readings; their ids and every (series_id, t, value)."""
    engine = open_database(url)
    with engine.begin() as connection:
        for target in ("a.example", "b.example"):
            connection.execute(
                insert(series).values(
                    source="fediverse",
                    platform="mastodon",
                    target=target,
                    metric="users_total",
                    period="",
                )
            )
        ids = [int(i) for i in connection.scalars(select(series.c.id).order_by(series.c.id))]
        rows = [
            {"series_id": sid, "observed_at": T0 + timedelta(days=day), "value": 1_000 + day}
            for sid in ids
            for day in range(READINGS)
        ]
        connection.execute(insert(points), rows)
    expected = [
        (int(row["series_id"]), int(row["observed_at"].timestamp()), int(row["value"]))
        for row in rows
    ]
    return engine, ids, expected


def loaded_rows(engine: Engine) -> list[tuple[int, int, int]]:
    frame = load.load_points(engine).frame
    columns = (frame[name].tolist() for name in ("series_id", "t", "value"))
    return [(int(a), int(b), int(c)) for a, b, c in zip(*columns, strict=True)]


@pytest.fixture(params=["postgresql", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tracker.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_rows_committed_between_the_count_and_the_select_do_not_cut_the_snapshot(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, ids, expected = filled(url)
    writer = open_database(url, upgrade=False)
    original = load._driver_rows
    written: list[int] = []

    def commit_meanwhile(connection: Connection, sql: str) -> Iterator[list[tuple[int, int, int]]]:
        # Ten older readings of the first series, committed after the count.
        with writer.begin() as other:
            other.execute(
                insert(points),
                [
                    {"series_id": ids[0], "observed_at": T0 - timedelta(days=day + 1), "value": 1}
                    for day in range(10)
                ],
            )
        written.append(10)
        yield from original(connection, sql)

    monkeypatch.setattr(load, "_driver_rows", commit_meanwhile)
    try:
        during = loaded_rows(engine)
        monkeypatch.undo()
        after = loaded_rows(engine)
    finally:
        writer.dispose()
        engine.dispose()
    assert written == [10]
    # One snapshot: exactly the rows as they were when the read began, none cut...
    assert during == expected
    # ...and the rows committed meanwhile are there for the next read.
    assert len(after) == len(expected) + 10
    assert set(expected) <= set(after)


def test_a_reading_committed_after_the_listing_waits_for_the_next_report(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `analyse` lists the series (their span sizes the totals), then loads them chunk by
    # chunk: a collection committing in between must not reach past the listed span.
    from tracker.analysis import pipeline

    engine, ids, _ = filled(url)
    writer = open_database(url, upgrade=False)
    before = pipeline.analyse(engine)
    original = pipeline.load_points

    def collected_meanwhile(*args: object, **kwargs: object) -> load.Points:
        with writer.begin() as other:
            moment = T0 + timedelta(days=READINGS + 1)
            other.execute(insert(points).values(series_id=ids[0], observed_at=moment, value=10**6))
        monkeypatch.setattr(pipeline, "load_points", original)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "load_points", collected_meanwhile)
    try:
        during = pipeline.analyse(engine)
        after = pipeline.analyse(engine)
    finally:
        writer.dispose()
        engine.dispose()
    assert during.totals.equals(before.totals)
    assert during.last_day == before.last_day
    assert after.last_day == (before.last_day or 0) + 2  # the next report has it
