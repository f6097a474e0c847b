"""Faults a months-long unattended run meets: signals, readers, read-only disks, killed imports.

(SIGKILL mid-collection and a full disk are in test_collect_faults.py.)
"""

from __future__ import annotations

import csv
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import Workspace, clean_env
from tests.support.loopback import Loopback, Reply
from tests.support.sites import MastodonSpec, iso, slowed

NOW = datetime(2022, 11, 9, 12, 0, tzinfo=UTC)
ROWS_PER_TARGET = 39  # 6 readings + 11 complete weeks x 3 weekly metrics


def count(db: Path, sql: str) -> int:
    with sqlite3.connect(db, timeout=30) as connection:
        return int(connection.execute(sql).fetchone()[0])


def integrity(db: Path) -> str:
    with sqlite3.connect(db, timeout=30) as connection:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])


def start_collect(workspace: Workspace, now: datetime = NOW) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tracker", "collect", "--config", str(workspace.config)],
        cwd=workspace.root,
        env=clean_env(TRACKER_NOW=iso(now)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_attempts(
    workspace: Workspace, process: subprocess.Popen[str], at_least: int, run_id: int = 1
) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            done = count(workspace.db, f"SELECT COUNT(*) FROM attempts WHERE run_id = {run_id}")
        except sqlite3.OperationalError:
            done = 0  # the schema is being created
        if done >= at_least:
            return
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)


def healthy(loopback: Loopback, count: int, delay: float = 0.0) -> list[str]:
    return [loopback.add(slowed(MastodonSpec().routes(NOW), delay)).url for _ in range(count)]


def hanging(loopback: Loopback, count: int) -> list[str]:
    return [loopback.add({"*": Reply(hang=True)}).url for _ in range(count)]


def configure(workspace: Workspace, instances: list[str], concurrency: int = 8) -> None:
    workspace.write_config(
        {
            "http": {"timeout": 60, "deadline": 120, "retries": 0, "concurrency": concurrency},
            "collectors": {"fediverse": {"instances": instances}},
        }
    )


def test_sigterm_mid_collection_cancels_what_hangs_after_the_grace_and_exits_0(
    workspace: Workspace, loopback: Loopback
) -> None:
    fast = healthy(loopback, 4)
    configure(workspace, fast + hanging(loopback, 2))
    process = start_collect(workspace)
    wait_for_attempts(workspace, process, 4)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    took = time.monotonic() - started
    assert process.returncode == 0, err
    assert 4.5 <= took < 12  # the hanging targets had their 5 s, then were cancelled
    assert out.splitlines()[-1].startswith("fediverse: 4 targets: 4 ok, 0 failed, 0 skipped; ")
    assert out.splitlines()[-1].endswith(
        "(interrupted: stopped: 2 of 6 targets not collected (2 cancelled in flight))"
    )
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].endswith(
        "WARNING tracker.runner: SIGTERM: stopping: no new targets; "
        "those in flight get 5 s to finish"
    )
    assert integrity(workspace.db) == "ok"
    assert count(workspace.db, "SELECT COUNT(*) FROM attempts") == 4
    assert count(workspace.db, "SELECT COUNT(*) FROM observations") == 4 * ROWS_PER_TARGET
    with sqlite3.connect(workspace.db) as db:
        assert db.execute("SELECT status, finished_at IS NOT NULL FROM runs").fetchall() == [
            ("interrupted", 1)
        ]

    configure(workspace, fast)
    result = workspace.run("collect", TRACKER_NOW=iso(NOW + timedelta(hours=1)))
    assert result.returncode == 0, result.stderr
    assert "4 targets: 4 ok" in result.stdout


def test_sigint_lets_the_target_in_flight_finish_and_starts_no_other(
    workspace: Workspace, loopback: Loopback
) -> None:
    configure(workspace, healthy(loopback, 6, delay=0.2), concurrency=1)
    process = start_collect(workspace)
    wait_for_attempts(workspace, process, 1)
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert time.monotonic() - started < 4  # no grace wasted: the one in flight finished
    done = count(workspace.db, "SELECT COUNT(*) FROM attempts")
    assert 2 <= done <= 3  # the first, the one in flight, at most one more racing the signal
    with sqlite3.connect(workspace.db) as db:
        status, message = db.execute("SELECT status, message FROM runs").fetchone()
    assert (status, message) == ("interrupted", f"stopped: {6 - done} of 6 targets not collected")
    assert count(workspace.db, "SELECT COUNT(*) FROM observations") == done * ROWS_PER_TARGET
    assert "SIGINT: stopping: no new targets" in err
    assert "Traceback" not in err


def test_a_second_signal_exits_at_once_and_nothing_is_half_written(
    workspace: Workspace, loopback: Loopback
) -> None:
    fast = healthy(loopback, 3)
    configure(workspace, fast + hanging(loopback, 2))
    process = start_collect(workspace)
    wait_for_attempts(workspace, process, 3)
    process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert time.monotonic() - started < 2
    assert process.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines()[-1] == (
        "SIGTERM again: exiting now; targets in flight are not written"
    )
    assert integrity(workspace.db) == "ok"
    assert count(workspace.db, "SELECT COUNT(*) FROM attempts") == 3
    assert count(workspace.db, "SELECT COUNT(*) FROM observations") == 3 * ROWS_PER_TARGET

    configure(workspace, fast)
    result = workspace.run("collect", TRACKER_NOW=iso(NOW + timedelta(hours=1)))
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(workspace.db) as db:
        assert db.execute("SELECT status, message FROM runs ORDER BY id").fetchall() == [
            ("interrupted", "the process ended before the run was finished"),
            ("ok", None),
        ]


def test_a_reader_holding_the_file_does_not_stop_a_collection(
    workspace: Workspace, loopback: Loopback
) -> None:
    configure(workspace, healthy(loopback, 2))
    assert workspace.run("collect", TRACKER_NOW=iso(NOW)).returncode == 0
    before = 2 * ROWS_PER_TARGET

    # A notebook in the middle of a read: its snapshot stays, the collection goes on.
    notebook = sqlite3.connect(workspace.db, isolation_level=None)
    notebook.execute("BEGIN")
    assert notebook.execute("SELECT COUNT(*) FROM observations").fetchone()[0] == before
    result = workspace.run("collect", TRACKER_NOW=iso(NOW + timedelta(hours=1)))
    assert result.returncode == 0, result.stderr
    assert notebook.execute("SELECT COUNT(*) FROM observations").fetchone()[0] == before
    notebook.execute("COMMIT")
    after = notebook.execute("SELECT COUNT(*) FROM observations").fetchone()[0]
    assert after == before + 2 * 6  # six new readings per server; the weeks were updated

    # A notebook writing (say, pandas to_sql) holds the write lock for 3 s: we wait.
    notebook.execute("BEGIN IMMEDIATE")
    notebook.execute("CREATE TABLE notes (text TEXT)")
    process = start_collect(workspace, NOW + timedelta(hours=2))
    time.sleep(3)
    assert process.poll() is None  # still waiting, not failed
    notebook.execute("COMMIT")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "2 targets: 2 ok" in out
    assert notebook.execute("SELECT COUNT(*) FROM observations").fetchone()[0] == after + 12
    notebook.close()


@pytest.fixture
def small_mount(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs we can remount read-only (as root, chmod does not stop writes; this does)."""
    point = tmp_path / "mnt"
    point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.fail(
            f"this test needs `mount -t tmpfs` (root in a machine that allows mounts): "
            f"{mounted.stderr.strip()}"
        )
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def remount(point: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(point)], check=True)


def test_a_read_only_database_exits_1_with_one_line_and_loses_nothing(
    workspace: Workspace, loopback: Loopback, small_mount: Path
) -> None:
    workspace.write_config(
        {
            "database": "sqlite:///mnt/tracker.db",
            "collectors": {"fediverse": {"instances": healthy(loopback, 2)}},
        }
    )
    db = small_mount / "tracker.db"
    assert workspace.run("collect", TRACKER_NOW=iso(NOW)).returncode == 0
    earlier = workspace.export()
    assert len(earlier) == 2 * ROWS_PER_TARGET
    exported = workspace.root / "earlier.csv"
    assert workspace.run("export", "--output", str(exported)).returncode == 0

    remount(small_mount, "ro")
    result = workspace.run("collect", TRACKER_NOW=iso(NOW + timedelta(hours=1)))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: cannot write to {db}: its file system is read-only"
    ]
    # `import` takes no lock: opening the database already fails, and says why.
    imported = workspace.run("import", str(exported))
    assert imported.returncode == 1
    assert len(imported.stderr.splitlines()) == 1, imported.stderr
    assert (
        imported.stderr.strip() == f"error: cannot open database {db}: its file system is read-only"
    )

    remount(small_mount, "rw")
    assert integrity(db) == "ok"
    assert workspace.export() == earlier


def write_big_csv(path: Path, rows: int) -> None:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(
            ["source", "platform", "target", "metric", "period", "observed_at", "value"]
        )
        for index in range(rows):
            day = start + timedelta(days=index % 1000)
            writer.writerow(
                [
                    "archive",
                    "mastodon",
                    f"s{index // 1000}.example",
                    "users_total",
                    "",
                    day.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    index,
                ]
            )


def test_sigkill_during_an_import_writes_nothing_of_it(
    workspace: Workspace, loopback: Loopback
) -> None:
    configure(workspace, healthy(loopback, 1))
    assert workspace.run("collect", TRACKER_NOW=iso(NOW)).returncode == 0
    earlier = workspace.export()
    big = workspace.root / "big.csv"
    rows = 400_000
    write_big_csv(big, rows)

    process = subprocess.Popen(
        [sys.executable, "-m", "tracker", "import", str(big), "--config", str(workspace.config)],
        cwd=workspace.root,
        env=clean_env(TRACKER_NOW=iso(NOW)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # The import is one write transaction: wait until it holds the write lock.
    probe = sqlite3.connect(workspace.db, timeout=0, isolation_level=None)
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
        except sqlite3.OperationalError:
            break  # "database is locked": the import is writing
        time.sleep(0.02)
    probe.close()
    time.sleep(0.5)
    assert process.poll() is None, "the import finished before we could kill it"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)

    assert integrity(workspace.db) == "ok"
    assert count(workspace.db, "SELECT COUNT(*) FROM runs WHERE collector = 'import'") == 0
    assert count(workspace.db, "SELECT COUNT(*) FROM observations WHERE source = 'archive'") == 0
    assert workspace.export() == earlier

    result = workspace.run("import", str(big), TRACKER_NOW=iso(NOW))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"imported {rows} observations from {big}"
    assert count(workspace.db, "SELECT COUNT(*) FROM observations WHERE source = 'archive'") == rows
    assert integrity(workspace.db) == "ok"
