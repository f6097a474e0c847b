"""Storage: the migrations build the schema the code expects, and upserts never duplicate."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from tracker.model import Fetched, Observation, Parsed, TargetResult
from tracker.storage.engine import current_revision, head_revision, open_database, write_transaction
from tracker.storage.points import observation_rows, upsert_rows
from tracker.storage.schema import (
    OBSERVATION_COLUMNS,
    OBSERVATIONS_FROM,
    attempts,
    fetches,
    metadata,
    payloads,
    points,
    series,
)
from tracker.storage.store import Store

T0 = datetime(2022, 11, 7, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return open_database(f"sqlite:///{tmp_path / 'db' / 'tracker.db'}")


def test_migrations_match_the_metadata(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    assert diff == []


def test_sqlite_runs_in_wal_with_a_busy_timeout(engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def obs(
    value: int, *, replace: bool = True, at: datetime = T0, period: str = "week"
) -> Observation:
    return Observation("mastodon", "m.example", "registrations", value, at, period, replace)  # type: ignore[arg-type]


def stored(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                select(*(OBSERVATION_COLUMNS[n] for n in ("metric", "observed_at", "value")))
                .select_from(OBSERVATIONS_FROM)
                .order_by(OBSERVATION_COLUMNS["observed_at"])
            )
        ]


def test_upsert_updates_and_fill_only_keeps(engine: Engine) -> None:
    with write_transaction(engine) as connection:
        upsert_rows(connection, observation_rows("fediverse", None, [obs(5)]))
    with write_transaction(engine) as connection:
        upsert_rows(connection, observation_rows("fediverse", None, [obs(7)]))
    assert stored(engine) == [("registrations", T0, 7)]
    with write_transaction(engine) as connection:
        upsert_rows(connection, observation_rows("fediverse", None, [obs(9, replace=False)]))
    assert stored(engine) == [("registrations", T0, 7)]
    later = T0.replace(day=14)
    with write_transaction(engine) as connection:
        upsert_rows(
            connection, observation_rows("fediverse", None, [obs(3, replace=False, at=later)])
        )
    assert stored(engine) == [("registrations", T0, 7), ("registrations", later, 3)]


def test_a_target_is_written_whole_or_not_at_all(engine: Engine) -> None:
    store = Store(engine)
    run_id = store.start_run("fediverse", T0)
    body = b'{"ok": true}'
    good = Observation("mastodon", "m.example", "users_total", 10, T0)
    broken = Observation(None, "m.example", "posts_total", 10, T0)  # type: ignore[arg-type]
    result = TargetResult(
        source="fediverse",
        target="m.example",
        outcome="ok",
        started_at=T0,
        fetched=[Fetched("nodeinfo", "http://m.example/n", T0, status=200, body=body)],
        parsed=Parsed(observations=[good, broken], platform="mastodon"),
    )
    with pytest.raises(IntegrityError):
        store.write_targets(run_id, [result])
    with engine.connect() as connection:
        for table in (attempts, fetches, payloads, points, series):
            assert connection.execute(select(func.count()).select_from(table)).scalar() == 0


def test_write_target_commits_each_target_on_its_own(engine: Engine) -> None:
    """A target the database refuses takes no other target with it (the runner's commits)."""
    store = Store(engine)
    run_id = store.start_run("fediverse", T0)

    def result(target: str, platform: str | None) -> TargetResult:
        reading = Observation(platform, target, "users_total", 10, T0)  # type: ignore[arg-type]
        return TargetResult("fediverse", target, "ok", T0, [], Parsed(observations=[reading]))

    assert store.write_target(run_id, result("a.example", "mastodon")) == 1
    with pytest.raises(IntegrityError):
        store.write_target(run_id, result("b.example", None))
    assert store.write_target(run_id, result("c.example", "mastodon")) == 1
    with engine.connect() as connection:
        stored_targets = connection.execute(select(attempts.c.target).order_by(attempts.c.id))
        assert stored_targets.scalars().all() == ["a.example", "c.example"]
    assert [value for _, _, value in stored(engine)] == [10, 10]


def test_a_reader_does_not_block_a_write(engine: Engine, tmp_path: Path) -> None:
    reader = sqlite3.connect(tmp_path / "db" / "tracker.db")
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM observations").fetchone()
    try:
        with write_transaction(engine) as connection:
            upsert_rows(connection, observation_rows("fediverse", None, [obs(1)]))
    finally:
        reader.rollback()
        reader.close()
    assert stored(engine) == [("registrations", T0, 1)]


def test_the_observations_view_reads_like_the_export(engine: Engine, tmp_path: Path) -> None:
    with write_transaction(engine) as connection:
        upsert_rows(connection, observation_rows("fediverse", None, [obs(4)]))
    with sqlite3.connect(tmp_path / "db" / "tracker.db") as db:
        rows = db.execute("SELECT * FROM observations").fetchall()
    assert rows == [
        (
            "fediverse",
            "mastodon",
            "m.example",
            "registrations",
            "week",
            "2022-11-07 00:00:00",
            4,
            None,
        )
    ]
