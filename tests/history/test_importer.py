"""Imports are all or nothing, idempotent, traceable to their file, and never spliced."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from tests.history.conftest import JOINMASTODON, NOW
from tracker.analysis.pipeline import analyse
from tracker.errors import ImportFileError
from tracker.history.archives import ARCHIVES
from tracker.history.importer import import_file, import_shipped
from tracker.storage.engine import open_database, write_transaction
from tracker.storage.history_rows import source_extents
from tracker.storage.points import upsert_rows
from tracker.storage.schema import points, runs, series

HEADER = "timestamp,usercount,instancecount,tootscount\n"
GOOD = HEADER + "1600000000,100,10,1000\n1600003600,110,11,1100\n"


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return open_database(f"sqlite:///{tmp_path / 'tracker.db'}")


def snapshot(engine: Engine) -> tuple[list[tuple[object, ...]], ...]:
    with engine.connect() as connection:
        return tuple(
            [tuple(row) for row in connection.execute(select(table).order_by(*table.c))]
            for table in (runs, series, points)
        )


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_second_import_adds_nothing_and_records_nothing(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path / "bot.csv", GOOD)
    first = import_file(engine, path, NOW)
    assert (first.added, first.archive.name) == (6, "mastodonusercount")
    before = snapshot(engine)
    again = import_file(engine, path, NOW)
    assert (again.added, again.run_id) == (0, None)
    assert again.line() == "mastodonusercount: added 0 observations (all 6 already stored)"
    assert snapshot(engine) == before


def test_a_newer_copy_adds_only_its_new_rows(engine: Engine, tmp_path: Path) -> None:
    import_file(engine, write(tmp_path / "old.csv", GOOD), NOW)
    newer = import_file(engine, write(tmp_path / "new.csv", GOOD + "1600007200,120,12,1200\n"), NOW)
    assert newer.added == 3
    assert "; 6 were already stored" in newer.line()


def test_a_bad_row_leaves_the_database_unchanged(engine: Engine, tmp_path: Path) -> None:
    import_file(engine, write(tmp_path / "good.csv", GOOD), NOW)
    before = snapshot(engine)
    bad = GOOD + "1600007200,120,12,1200\n1600010800,-1,12,1200\n1600014400,130,x,1300\n"
    with pytest.raises(ImportFileError) as caught:
        import_file(engine, write(tmp_path / "bad.csv", bad), NOW)
    assert str(caught.value).startswith("bad.csv: nothing imported: 2 bad rows: line 5: ")
    assert "line 6: instancecount 'x'" in str(caught.value)
    assert snapshot(engine) == before


def test_a_bad_file_into_an_empty_database_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    before = snapshot(engine)
    with pytest.raises(ImportFileError, match="1 bad row: line 4: time 'oops'"):
        import_file(engine, write(tmp_path / "bad.csv", GOOD + "oops,1,1,1\n"), NOW)
    assert snapshot(engine) == before == ([], [], [])


def test_a_named_archive_must_match_the_file(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path / "bot.csv", GOOD)
    with pytest.raises(ImportFileError, match="mastodonusercount archive's format"):
        import_file(engine, path, NOW, ARCHIVES["bsky_users"])
    with pytest.raises(ImportFileError, match="cannot read"):
        import_file(engine, tmp_path / "absent.csv", NOW)


def test_each_point_names_the_run_and_file_it_came_from(
    engine: Engine, shared: Callable[[str], Path]
) -> None:
    path = shared(JOINMASTODON)
    result = import_file(engine, path, NOW)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with engine.connect() as connection:
        run = connection.execute(select(runs)).one()
        by_run: dict[int, int] = dict(
            connection.execute(
                select(points.c.run_id, func.count()).group_by(points.c.run_id)
            ).all()
        )
        names = connection.execute(
            select(series.c.source, series.c.platform, series.c.target, series.c.period).distinct()
        ).all()
    assert (run.id, run.collector, run.status) == (
        result.run_id,
        "history:joinmastodon_archive",
        "ok",
    )
    assert run.message == f"history import of {path.name}, sha256 {digest}"
    assert by_run == {run.id: run.observations_written} == {run.id: 3 * 1_051}
    assert names == [("joinmastodon_archive", "mastodon", "joinmastodon_archive", "")]
    extent = source_extents(engine, ["joinmastodon_archive", "joinmastodon"])
    assert list(extent) == ["joinmastodon_archive"]
    assert extent["joinmastodon_archive"].rows == 3 * 1_051
    assert extent["joinmastodon_archive"].first.date().isoformat() == "2022-09-30"
    assert extent["joinmastodon_archive"].last.date().isoformat() == "2025-10-14"


def test_the_shipped_series_keeps_its_contract_names(engine: Engine) -> None:
    result = import_shipped(engine, ARCHIVES["mastodonusercount"], NOW)
    assert result.added == 3 * 37_144 - 18
    assert "(shipped)" in result.line() and "18 zero counts left out" in result.line()
    with engine.connect() as connection:
        names = connection.execute(
            select(
                series.c.source,
                series.c.platform,
                series.c.target,
                series.c.metric,
                series.c.period,
            ).order_by(series.c.metric)
        ).all()
        message = connection.execute(select(runs.c.message)).scalar_one()
    assert names == [
        ("mastodonusercount", "mastodon", "mastodonusercount", metric, "")
        for metric in ("posts_total", "servers_total", "users_total")
    ]
    assert result.sha256 in message
    assert import_shipped(engine, ARCHIVES["mastodonusercount"], NOW).added == 0


def test_an_archive_is_its_own_total_never_spliced_with_the_live_series(
    engine: Engine, tmp_path: Path
) -> None:
    """The archive of the official series and the live collector's series stay two lines."""
    daily = "date,server_count,user_count,active_user_count\n"
    daily += "".join(f"2022-10-{day:02d},100,{1000 + day},50\n" for day in range(1, 21))
    import_file(engine, write(tmp_path / "official.csv", daily), NOW)
    import_file(engine, write(tmp_path / "bot.csv", GOOD), NOW)
    live = [
        {
            "source": "joinmastodon",
            "platform": "mastodon",
            "target": "joinmastodon",
            "metric": metric,
            "period": "",
            "observed_at": datetime(2022, 10, day, tzinfo=UTC),
            "value": value,
            "run_id": None,
        }
        for day in range(10, 21)
        for metric, value in (("users_total", 7), ("servers_total", 3))
    ]
    with write_transaction(engine) as connection:
        upsert_rows(connection, ((True, row) for row in live))
    totals = analyse(engine).totals
    users = totals[totals["metric"] == "users_total"].groupby("source")["value"].last()
    assert users.to_dict() == {
        "joinmastodon": 7,
        "joinmastodon_archive": 1020,
        "mastodonusercount": 110,
    }
    assert set(totals["reporting"]) == {1}
