"""`tracker db copy`: SQLite <-> PostgreSQL, exact, resumable after SIGKILL, and refusing
to merge two histories. Every check compares the tables row by row, independently of
the checksums the command prints."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, delete, func, select, text, update

from tests.conftest import REPO, Workspace, clean_env
from tests.support import payloads as pl
from tracker.instants import iso_z
from tracker.model import Failure, Fetched, Observation, Parsed, TargetResult
from tracker.sanity import Rejection
from tracker.storage import copy as copy_module
from tracker.storage.collector_state import read_state, swap_state
from tracker.storage.copy import canonical
from tracker.storage.engine import open_database
from tracker.storage.schema import (
    attempts,
    collector_state,
    fetches,
    payloads,
    points,
    rejections,
    runs,
    series,
)
from tracker.storage.store import Store

TABLES = (runs, attempts, payloads, fetches, rejections, series, points, collector_state)
T0 = datetime(2022, 10, 20, tzinfo=UTC)


def fill_history(url: str, runs_count: int, targets: int = 20, start: datetime = T0) -> None:
    """Collections as the fediverse collector writes them: real-shaped bodies (one
    unchanging, one with the day's numbers), a failing server, rejected values and
    weekly buckets, six hours apart."""
    engine = open_database(url)
    store = Store(engine)
    wellknown = json.dumps(pl.wellknown("https://s.example", "2.0")).encode()
    try:
        for number in range(runs_count):
            at = start + timedelta(hours=6 * number)
            run_id = store.start_run("fediverse", at)
            step = int((at - T0).total_seconds() // (6 * 3600))  # new numbers every run
            results = [_target(i, step, at, wellknown) for i in range(targets)]
            store.write_targets(run_id, results)
            store.finish_run(
                run_id, at + timedelta(minutes=2), "partial", {"targets_ok": targets - 1}
            )
        with engine.begin() as connection:  # an incremental collector's cursor, moving on
            before = read_state(connection, "plc", "cursor")
            swap_state(connection, "plc", "cursor", before, iso_z(start), start)
    finally:
        engine.dispose()


def _target(index: int, number: int, at: datetime, wellknown: bytes) -> TargetResult:
    host = f"s{index}.example"
    if index == 0:  # a dead server: only the fetch log
        fetched = [
            Fetched(
                "wellknown",
                f"https://{host}/.well-known/nodeinfo",
                at,
                error_kind="timeout",
                error_detail="no byte for 5 s",
            )
        ]
        return TargetResult(
            "fediverse", host, "failed", at, fetched, failure=Failure("timeout", "no byte for 5 s")
        )
    users = 1000 * index + number
    document = pl.mastodon_nodeinfo(users, users // 3, users // 2, users * 40)
    fetched = [
        Fetched(
            "wellknown",
            f"https://{host}/.well-known/nodeinfo",
            at,
            status=200,
            body=wellknown,
            content_type="application/json",
        ),
        Fetched(
            "nodeinfo",
            f"https://{host}/nodeinfo/2.0",
            at,
            status=200,
            body=json.dumps(document).encode(),
            content_type="application/json",
        ),
    ]
    monday = (at - timedelta(days=at.weekday())).replace(hour=0)
    observations = [
        Observation("mastodon", host, "users_total", users, at),
        Observation("mastodon", host, "posts_total", users * 40, at),
        Observation("mastodon", host, "registrations", index + number % 7, monday, "week"),
    ]
    rejected = [Rejection("peers_total", "-3", "negative count")] if index % 5 == 0 else []
    parsed = Parsed(observations, rejected, "mastodon", "mastodon", "4.2.1")
    return TargetResult("fediverse", host, "ok", at, fetched, parsed)


def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows in key order, as Python values (bodies included)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table.name: [
                    tuple(row)
                    for row in connection.execute(
                        select(table).order_by(*table.primary_key.columns)
                    )
                ]
                for table in TABLES
            }
    finally:
        engine.dispose()


def copy(workspace: Workspace, to: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return workspace.cli("db", "copy", "--to", to, *args, **env)


def verified_lines(output: str) -> dict[str, str]:
    lines = {line.split(":")[0]: line for line in output.splitlines() if ": " in line}
    return {name: lines[name] for name in (t.name for t in TABLES) if name in lines}


@pytest.fixture
def source(workspace: Workspace) -> Workspace:
    workspace.write_config()
    fill_history(workspace.db_url, runs_count=12)
    return workspace


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def test_sqlite_to_postgresql_and_back_is_exact(
    source: Workspace, postgres_url: str, tmp_path: Path
) -> None:
    original = dump(source.db_url)
    assert len(original["points"]) == 12 * 19 * 2 + 19  # instants, plus one week's buckets
    assert len(original["payloads"]) == 1 + 12 * 19  # the shared body once

    result = copy(source, postgres_url)
    assert result.returncode == 0, result.stderr
    lines = verified_lines(result.stdout)
    assert list(lines) == [t.name for t in TABLES]
    for name, rows in original.items():
        assert lines[name].startswith(f"{name}: {len(rows)} rows ({len(rows)} written, 0 removed)")
        assert lines[name].endswith("verified")
    assert "copy verified: 9 tables" in result.stdout
    assert dump(postgres_url) == original

    # And back, from PostgreSQL (as the configured database) into a new SQLite file.
    back = tmp_path / "back" / "copy.db"
    result = copy(source, str(back), TRACKER_DB_URL=postgres_url)
    assert result.returncode == 0, result.stderr
    assert dump(sqlite_url(back)) == original
    # The checksums are the same whichever engine computed them.
    first = [line.split("checksum ")[1] for line in verified_lines(result.stdout).values()]
    assert first == [line.split("checksum ")[1] for line in lines.values()]
    with sqlite3.connect(back) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_the_copy_takes_new_collections_with_fresh_ids(
    source: Workspace, postgres_url: str
) -> None:
    """Ids were copied as they are; PostgreSQL's sequences must have moved past them."""
    assert copy(source, postgres_url).returncode == 0
    fill_history(postgres_url, runs_count=1, start=T0 + timedelta(days=30))
    copied = dump(postgres_url)
    assert [row[0] for row in copied["runs"]] == list(range(1, 14))
    assert len({row[0] for row in copied["attempts"]}) == 13 * 20
    in_postgres = Workspace(source.root, database_url=postgres_url)
    assert len(in_postgres.export()) == len(source.export()) + 19 * 3  # a new week too


def test_a_rerun_writes_nothing_then_follows_the_source(
    source: Workspace, postgres_url: str
) -> None:
    assert copy(source, postgres_url).returncode == 0
    again = copy(source, postgres_url)
    assert again.returncode == 0, again.stderr
    assert all(
        ", 0 written, 0 removed)" in line or "(0 written, 0 removed)" in line
        for line in verified_lines(again.stdout).values()
    )

    # The source changes as a reparse, a prune and a new run change it.
    engine = open_database(source.db_url)
    with engine.begin() as connection:
        connection.execute(delete(points).where(points.c.run_id == 3))
        connection.execute(delete(rejections).where(rejections.c.attempt_id < 30))
        connection.execute(update(runs).where(runs.c.id == 2).values(status="interrupted"))
        connection.execute(update(fetches).values(payload_id=None).where(fetches.c.id < 40))
        connection.execute(
            delete(payloads).where(
                ~payloads.c.id.in_(
                    select(fetches.c.payload_id).where(fetches.c.payload_id.is_not(None))
                )
            )
        )
    engine.dispose()
    fill_history(source.db_url, runs_count=1, start=T0 + timedelta(days=10))
    changed = dump(source.db_url)

    result = copy(source, postgres_url)
    assert result.returncode == 0, result.stderr
    lines = verified_lines(result.stdout)
    assert "(2 written, 0 removed)" in lines["runs"]  # run 2's status; run 13 is new
    assert "0 removed" not in lines["points"]
    assert "0 removed" not in lines["payloads"]
    assert dump(postgres_url) == changed


def test_a_target_with_another_history_is_refused(
    source: Workspace, tmp_path: Path, postgres_url: str
) -> None:
    other = tmp_path / "other.db"
    fill_history(sqlite_url(other), runs_count=2, start=T0 + timedelta(days=100))
    before = dump(sqlite_url(other))
    for target in (str(other), postgres_url):
        if target == postgres_url:
            fill_history(postgres_url, runs_count=1, start=T0 - timedelta(days=3))
            before = dump(postgres_url)
        result = copy(source, target)
        assert result.returncode == 2
        error = result.stderr.strip()
        assert len(error.splitlines()) == 1
        assert "holds other data (runs id 1 is fediverse" in error
        assert "copy into an empty database" in error
        assert dump(target if target == postgres_url else sqlite_url(other)) == before


def test_the_source_itself_and_bad_urls_are_refused(source: Workspace) -> None:
    before = dump(source.db_url)
    for to, message in (
        (str(source.db), "is the source database itself"),
        ("mysql://127.0.0.1/x", "db copy supports sqlite and postgresql, not mysql"),
        ("::nonsense::", "not a valid SQLAlchemy URL"),
    ):
        result = copy(source, to)
        assert result.returncode == 2, result.stdout
        assert message in result.stderr
    assert dump(source.db_url) == before


def test_passwords_never_printed(source: Workspace, postgres_url: str) -> None:
    with_password = postgres_url.replace("postgres@", "postgres:s3cret-pw@")
    result = copy(source, with_password)  # trust authentication ignores the password
    assert result.returncode == 0, result.stderr
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert "postgres:***@127.0.0.1" in result.stdout


def test_other_programs_tables_are_copied_too(
    source: Workspace, postgres_url: str, tmp_path: Path
) -> None:
    """APScheduler's SQLAlchemy job store keeps its jobs in the same database."""
    engine = create_engine(source.db_url)
    jobs = [("collect", 1667800800.5, os.urandom(300)), ("report", None, b"\x80\x04state")]
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE apscheduler_jobs (id VARCHAR(191) PRIMARY KEY, "
                "next_run_time FLOAT, job_state BLOB NOT NULL)"
            )
        )
        connection.execute(
            text("INSERT INTO apscheduler_jobs VALUES (:i, :n, :s)"),
            [{"i": i, "n": n, "s": s} for i, n, s in jobs],
        )
    engine.dispose()
    result = copy(source, postgres_url)
    assert result.returncode == 0, result.stderr
    assert "apscheduler_jobs: 2 rows (2 written, 0 removed)" in result.stdout
    back = tmp_path / "back.db"
    assert copy(source, str(back), TRACKER_DB_URL=postgres_url).returncode == 0
    for url in (postgres_url, sqlite_url(back)):
        engine = create_engine(url)
        with engine.connect() as connection:
            got = connection.execute(text("SELECT * FROM apscheduler_jobs ORDER BY id")).all()
        engine.dispose()
        assert [(i, n, bytes(s)) for i, n, s in got] == jobs


def test_a_target_that_does_not_verify_fails_with_one_line(
    source: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As if something wrote to the target while the copy ran: the checksums disagree."""
    original = copy_module._checksum

    def written_meanwhile(engine: Any, spec: Any) -> tuple[int, str]:
        rows, checksum = original(engine, spec)
        return (rows + 1, "0" * 64) if spec.name == "series" else (rows, checksum)

    monkeypatch.setattr(copy_module, "_checksum", written_meanwhile)
    count = len(dump(source.db_url)["series"])
    result = copy(source, str(tmp_path / "target.db"))
    assert result.returncode == 1
    lines = verified_lines(result.stdout)
    assert lines["series"].startswith(f"series: MISMATCH: source {count} rows, checksum ")
    assert f"target {count + 1} rows, checksum 0000000000000000" in lines["series"]
    assert all(line.endswith("verified") for name, line in lines.items() if name != "series")
    assert result.stderr.strip().splitlines() == [
        "error: the copy differs from the source in series (did something write to the "
        "target meanwhile?); run the same command again"
    ]


def test_canonical_rendering_is_unambiguous() -> None:
    assert canonical(None) == "\\N"
    assert canonical("\\N") == "\\\\N"
    assert canonical("a\tb\nc") == "a\\tb\\nc"
    assert canonical(datetime(2022, 10, 27, 9, tzinfo=UTC)) == "2022-10-27T09:00:00+00:00"
    assert canonical(b"x") == canonical(memoryview(b"x")) != canonical("x")
    assert canonical(True) != canonical(1)


# --- SIGKILL half-way ---------------------------------------------------------------


def _count(url: str, table: str) -> int:
    """Rows committed in the target so far (0 while its schema does not exist yet)."""
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            return 0
        with sqlite3.connect(path, timeout=5) as db:
            try:
                return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            except sqlite3.OperationalError:
                return 0
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            exists = connection.execute(text("SELECT to_regclass(:t)"), {"t": table}).scalar()
            if exists is None:
                return 0
            return int(
                connection.execute(select(func.count()).select_from(text(table))).scalar() or 0
            )
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def target_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "target.db")
    else:
        yield request.getfixturevalue("postgres_url")


@pytest.mark.slow
def test_sigkill_half_way_then_the_next_run_completes(
    workspace: Workspace, target_url: str
) -> None:
    workspace.write_config()
    fill_history(workspace.db_url, runs_count=60)
    original = dump(workspace.db_url)
    batch = 100
    command = [
        sys.executable,
        "-m",
        "tracker",
        "db",
        "copy",
        "--batch",
        str(batch),
        "--to",
        target_url,
        "--config",
        str(workspace.config),
    ]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while _count(target_url, "fetches") == 0:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the copy never reached the fetch log"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL

    # Killed half-way: earlier tables complete, the fetch log partly there in whole batches.
    copied = {t.name: _count(target_url, t.name) for t in TABLES}
    assert copied["runs"] == len(original["runs"])
    assert copied["attempts"] == len(original["attempts"])
    assert 0 < copied["fetches"] < len(original["fetches"])
    assert copied["fetches"] % batch == 0, "a batch was half-written"
    assert copied["points"] == 0
    if target_url.startswith("sqlite"):
        with sqlite3.connect(target_url.removeprefix("sqlite:///")) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert db.execute("PRAGMA foreign_key_check").fetchall() == []

    result = workspace.run("db", "copy", "--batch", str(batch), "--to", target_url)
    assert result.returncode == 0, result.stderr
    lines = verified_lines(result.stdout)
    assert f"runs: {len(original['runs'])} rows (0 written, 0 removed)" in lines["runs"]
    left = len(original["fetches"]) - copied["fetches"]
    assert f"({left} written, 0 removed)" in lines["fetches"]
    assert all(line.endswith("verified") for line in lines.values())
    assert dump(target_url) == original
