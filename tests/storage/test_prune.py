"""`tracker db prune --payloads-older-than`: old archived bodies go, shared and recent
ones stay, observations never change, and the space comes back (SQLite VACUUM)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from tests.conftest import Workspace
from tests.storage.test_copy import dump
from tests.support.loopback import Loopback
from tests.support.sites import MastodonSpec, iso
from tracker.model import Fetched, TargetResult
from tracker.storage import payload_codec
from tracker.storage.engine import open_database
from tracker.storage.prune import parse_age
from tracker.storage.schema import fetches, payloads
from tracker.storage.store import Store

DAY0 = datetime(2022, 11, 1, 12, 0, tzinfo=UTC)


def fetch_log(url: str) -> list[tuple[int, datetime, str | None]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            query = select(fetches.c.id, fetches.c.fetched_at, payloads.c.sha256).outerjoin(
                payloads, payloads.c.id == fetches.c.payload_id
            )
            return [tuple(row) for row in connection.execute(query.order_by(fetches.c.id))]  # type: ignore[misc]
    finally:
        engine.dispose()


def only_old(log: list[tuple[int, datetime, str | None]], cutoff: datetime) -> set[str]:
    """The rule, restated over the raw fetch log: every fetch of the body is older."""
    newest: dict[str, datetime] = {}
    for _, fetched_at, digest in log:
        if digest is not None:
            newest[digest] = max(newest.get(digest, fetched_at), fetched_at)
    return {digest for digest, at in newest.items() if at < cutoff}


def bases_needed(url: str, old: set[str]) -> set[str]:
    """The old bodies a staying body is stored against, directly or through old ones."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            query = select(payloads.c.sha256, payloads.c.base_sha256)
            below = {str(sha): base for sha, base in connection.execute(query)}
    finally:
        engine.dispose()
    needed: set[str] = set()
    for sha in set(below) - old:
        base = below[sha]
        while base is not None and base in old and base not in needed:
            needed.add(base)
            base = below[base]
    return needed


@pytest.fixture(params=["sqlite", "postgresql"])
def ws(request: pytest.FixtureRequest, tmp_path: Path) -> Workspace:
    if request.param == "sqlite":
        workspace = Workspace(tmp_path)
    else:
        workspace = Workspace(tmp_path, database_url=request.getfixturevalue("postgres_url"))
    workspace.write_config()
    return workspace


def test_collected_bodies_older_than_the_cutoff_go_and_observations_stay(
    ws: Workspace, loopback: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A body stored whole every other version, so five days hold old chains that go
    # whole and one that a kept delta still needs.
    monkeypatch.setattr(payload_codec, "MAX_DEPTH", 1)
    spec = MastodonSpec()
    site = loopback.add(spec.routes(DAY0))
    ws.write_config({"collectors": {"fediverse": {"instances": [site.url], "peers": True}}})
    for day in range(5):  # the counts change daily; robots.txt, peers... do not
        now = DAY0 + timedelta(days=day)
        spec.users += 17
        spec.posts += 1000
        site.routes.update(spec.routes(now))
        assert ws.cli("collect", TRACKER_NOW=iso(now)).returncode == 0
    before = dump(ws.db_url)
    exported = ws.export()
    log = fetch_log(ws.db_url)
    now = DAY0 + timedelta(days=4, hours=1)
    cutoff = now - timedelta(days=2)
    old = only_old(log, cutoff)
    needed = bases_needed(ws.db_url, old)
    gone = old - needed
    shared = {d for _, at, d in log if d and at < cutoff} - old
    assert gone and shared and needed  # the test means something only if all three exist
    unlinked = [row for row in log if row[2] in gone]

    result = ws.cli("db", "prune", "--payloads-older-than", "2d", TRACKER_NOW=iso(now))
    assert result.returncode == 0, result.stderr
    assert f"removed {len(gone)} archived payloads" in result.stdout
    assert f"{len(unlinked)} fetch log rows lost their body" in result.stdout
    assert "observations untouched" in result.stdout
    assert f"{len(needed)} old payloads stayed as the base of newer ones" in result.stdout

    after = dump(ws.db_url)
    assert {row[1] for row in after["payloads"]} == {
        row[1] for row in before["payloads"]
    } - gone  # sha256
    expected_log = [(i, at, None if d in gone else d) for i, at, d in log]
    assert fetch_log(ws.db_url) == expected_log
    for table in ("runs", "attempts", "rejections", "series", "points"):
        assert after[table] == before[table], table
    assert ws.export() == exported

    # reparse leaves the attempts that lost a body as they were, and rebuilds the rest.
    # reparse leaves the attempts that lost a body as they were, and rebuilds the rest,
    # the ones whose deltas are read through the old bases that stayed included.
    lost = {at.date() for _, at, _ in unlinked}  # one attempt a day
    assert 0 < len(lost) < 5
    reparsed = ws.cli("reparse")
    assert reparsed.returncode == 0, reparsed.stderr
    assert f"reparsed {5 - len(lost)} attempts" in reparsed.stdout
    assert f"{len(lost)} attempts had pruned payloads and were left as they were" in (
        reparsed.stdout
    )
    assert ws.export() == exported

    again = ws.cli("db", "prune", "--payloads-older-than", "2d", TRACKER_NOW=iso(now))
    assert "removed 0 archived payloads" in again.stdout


def write_bodies(url: str, plan: list[tuple[datetime, list[bytes]]]) -> None:
    """One run per (time, bodies); each body is one fetch."""
    engine = open_database(url)
    store = Store(engine)
    for at, bodies in plan:
        run_id = store.start_run("probe", at)
        fetched = [
            Fetched("document", f"https://x.example/{n}", at, status=200, body=body)
            for n, body in enumerate(bodies)
        ]
        store.write_targets(run_id, [TargetResult("probe", "x.example", "ok", at, fetched)])
        store.finish_run(run_id, at, "ok", {"targets_ok": 1})
    engine.dispose()


def test_a_fetch_exactly_at_the_cutoff_keeps_its_body(ws: Workspace) -> None:
    now = DAY0 + timedelta(days=10)
    cutoff = now - timedelta(days=3)
    plan = [
        (cutoff - timedelta(seconds=1), [b"old only", b"shared with the boundary"]),
        (cutoff, [b"at the boundary", b"shared with the boundary"]),
    ]
    write_bodies(ws.db_url, plan)
    result = ws.cli("db", "prune", "--payloads-older-than", "72h", TRACKER_NOW=iso(now))
    assert result.returncode == 0, result.stderr
    assert "removed 1 archived payloads" in result.stdout
    assert "1 fetch log rows lost their body" in result.stdout
    kept = {d for _, _, d in fetch_log(ws.db_url) if d}
    assert kept == {
        hashlib.sha256(b).hexdigest() for b in (b"at the boundary", b"shared with the boundary")
    }


def test_dry_run_changes_nothing(ws: Workspace) -> None:
    write_bodies(ws.db_url, [(DAY0 + timedelta(days=d), [f"day {d}".encode()]) for d in range(6)])
    before = dump(ws.db_url)
    now = iso(DAY0 + timedelta(days=6))
    result = ws.cli("db", "prune", "--payloads-older-than", "3d", "--dry-run", TRACKER_NOW=now)
    assert result.returncode == 0, result.stderr
    assert "would remove 3 archived payloads" in result.stdout
    assert "3 fetch log rows would lose their body" in result.stdout
    assert dump(ws.db_url) == before


def test_vacuum_gives_the_space_back_on_sqlite(workspace: Workspace) -> None:
    workspace.write_config()
    # Incompressible bodies, so what is stored is what is removed.
    plan = [(DAY0 + timedelta(days=d), [os.urandom(100_000) for _ in range(5)]) for d in range(20)]
    write_bodies(workspace.db_url, plan)
    size_before = _disk_size(workspace.db)
    now = iso(DAY0 + timedelta(days=20))
    result = workspace.cli("db", "prune", "--payloads-older-than", "5d", TRACKER_NOW=now)
    assert result.returncode == 0, result.stderr
    assert "removed 75 archived payloads (7.5 MB stored" in result.stdout
    assert "VACUUM done" in result.stdout
    size_after = _disk_size(workspace.db)
    assert size_before - size_after > 7_000_000
    with sqlite3.connect(workspace.db) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_postgresql_gets_vacuum_analyze(pg_workspace: Workspace) -> None:
    pg_workspace.write_config()
    write_bodies(pg_workspace.db_url, [(DAY0, [b"a", b"b"]), (DAY0 + timedelta(days=9), [b"c"])])
    now = iso(DAY0 + timedelta(days=10))
    result = pg_workspace.cli("db", "prune", "--payloads-older-than", "5d", TRACKER_NOW=now)
    assert result.returncode == 0, result.stderr
    assert "removed 2 archived payloads" in result.stdout
    assert "VACUUM ANALYZE done" in result.stdout
    engine = create_engine(pg_workspace.db_url)
    with engine.connect() as connection:
        analysed = connection.exec_driver_sql(
            "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'payloads'"
        ).scalar()
    engine.dispose()
    assert analysed is not None


def _disk_size(db: Path) -> int:
    wal = db.with_name(db.name + "-wal")
    return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90d", timedelta(days=90)), ("36h", timedelta(hours=36)), (" 7d ", timedelta(days=7))],
)
def test_ages(text: str, expected: timedelta) -> None:
    assert parse_age(text) == expected


@pytest.mark.parametrize("text", ["90", "1w", "-3d", "d", "3.5d", ""])
def test_bad_ages_are_one_line_and_exit_2(workspace: Workspace, text: str) -> None:
    workspace.write_config()
    result = workspace.cli("db", "prune", "--payloads-older-than", text)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: --payloads-older-than: {text!r} is not an age like 90d (days) or 36h (hours)"
    ]
    assert not workspace.db.exists()


def test_the_age_is_required(workspace: Workspace) -> None:
    workspace.write_config()
    result = workspace.cli("db", "prune")
    assert result.returncode == 2
    assert "--payloads-older-than" in result.stderr
