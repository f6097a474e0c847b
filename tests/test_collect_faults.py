"""Faults around a collection: SIGKILL mid-run, a full disk. Nothing committed is lost."""

from __future__ import annotations

import resource
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime

from tests.conftest import Workspace, clean_env
from tests.support.loopback import Loopback
from tests.support.sites import MastodonSpec, iso, slowed

NOW = datetime(2022, 11, 9, 12, 0, tzinfo=UTC)


def count(db: sqlite3.Connection, sql: str) -> int:
    return int(db.execute(sql).fetchone()[0])


def test_sigkill_mid_run_loses_nothing_committed(workspace: Workspace, loopback: Loopback) -> None:
    spec = MastodonSpec()
    sites = [loopback.add(slowed(spec.routes(NOW), 0.1)) for _ in range(30)]
    instances = [site.url for site in sites]
    workspace.write_config(
        {
            "http": {"concurrency": 2, "timeout": 5, "deadline": 30},
            "collectors": {"fediverse": {"instances": instances}},
        }
    )
    # A first, complete run on a few targets: its rows must survive the kill.
    workspace.write_config(
        {
            "http": {"concurrency": 3, "timeout": 5, "deadline": 30},
            "collectors": {"fediverse": {"instances": instances[:3]}},
        }
    )
    assert workspace.run("collect", TRACKER_NOW=iso(NOW)).returncode == 0
    earlier = workspace.export()
    assert len(earlier) == 3 * 39

    workspace.write_config(
        {
            "http": {"concurrency": 2, "timeout": 5, "deadline": 30},
            "collectors": {"fediverse": {"instances": instances}},
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "tracker", "collect", "--config", str(workspace.config)],
        cwd=workspace.root,
        env=clean_env(TRACKER_NOW=iso(NOW.replace(hour=13))),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    with sqlite3.connect(workspace.db, timeout=30) as db:
        while count(db, "SELECT COUNT(*) FROM attempts WHERE run_id = 2") < 4:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)

    with sqlite3.connect(workspace.db) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT status FROM runs WHERE id = 2").fetchone()[0] == "running"
        done = count(db, "SELECT COUNT(*) FROM attempts WHERE run_id = 2")
        assert 4 <= done < 30
        # Every committed target is whole: its fetch log and all its observations.
        for attempt_id, target, observations in db.execute(
            "SELECT id, target, observations FROM attempts WHERE run_id = 2"
        ).fetchall():
            assert observations == 39
            assert count(db, f"SELECT COUNT(*) FROM fetches WHERE attempt_id = {attempt_id}") == 6
            rows = count(
                db, f"SELECT COUNT(*) FROM observations WHERE run_id = 2 AND target = '{target}'"
            )
            assert rows == 6 + 33  # the weekly rows are re-written by this run too
    exported = {tuple(r.values()) for r in workspace.export()}
    assert {tuple(r.values()) for r in earlier} <= exported

    # The next run completes, and the killed one is marked as interrupted.
    workspace.write_config(
        {
            "http": {"concurrency": 30, "timeout": 5, "deadline": 30},
            "collectors": {"fediverse": {"instances": instances}},
        }
    )
    result = workspace.run("collect", TRACKER_NOW=iso(NOW.replace(hour=14)))
    assert result.returncode == 0, result.stderr
    assert "30 targets: 30 ok" in result.stdout
    with sqlite3.connect(workspace.db) as db:
        assert db.execute("SELECT status FROM runs WHERE id = 2").fetchone()[0] == "interrupted"
        assert db.execute("SELECT status FROM runs WHERE id = 3").fetchone()[0] == "ok"


def test_full_disk_exits_1_with_one_line_and_keeps_earlier_data(
    workspace: Workspace, loopback: Loopback
) -> None:
    site = loopback.add(MastodonSpec().routes(NOW))
    workspace.write_config({"collectors": {"fediverse": {"instances": [site.url]}}})
    assert workspace.run("collect", TRACKER_NOW=iso(NOW)).returncode == 0
    earlier = workspace.export()

    def tiny_disk() -> None:
        # Files may not grow past 36 KiB: room for the shared-memory index (32 KiB)
        # and a few pages of WAL, then SQLite sees "database or disk is full".
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (36864, 36864))

    result = subprocess.run(
        [sys.executable, "-m", "tracker", "collect", "--config", str(workspace.config)],
        cwd=workspace.root,
        env=clean_env(TRACKER_NOW=iso(NOW.replace(hour=13))),
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=tiny_disk,
        check=False,
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot write to ")
    # ENOSPC reads "database or disk is full"; a size limit (EFBIG) "disk I/O error".
    assert "disk is full" in lines[0] or "disk I/O error (is the disk full" in lines[0]
    assert workspace.export() == earlier
    with sqlite3.connect(workspace.db) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
