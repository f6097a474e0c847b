"""Faults around a collection: SIGKILL mid-run, a full disk. Nothing committed is lost."""

from __future__ import annotations

import asyncio
import itertools
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from tests.conftest import REPO, Workspace, clean_env
from tests.support.loopback import Loopback
from tests.support.sites import MastodonSpec, iso, slowed
from tracker.collect import build_collectors
from tracker.http.session import TargetSession
from tracker.loader import load_config
from tracker.runner import Runner
from tracker.storage.engine import open_database
from tracker.storage.history import History
from tracker.storage.store import Store
from tracker.targets import Target

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


FINISHING_TOGETHER = 6
KILLED_AT_WRITE = 4


def finish_together_then_die(kill_at_write: int) -> None:
    """Child process: collect the configured sites, all finishing at the same moment,
    and SIGKILL itself as the writer starts writing the `kill_at_write`-th target."""
    config = load_config(Path("config.yaml"))
    [collector] = build_collectors(config)
    engine = open_database(config.database)
    attempts_written = itertools.count(1)

    @event.listens_for(engine, "before_cursor_execute")
    def kill_mid_write(*args: Any) -> None:
        statement = args[2]
        if statement.startswith("INSERT INTO attempts") and next(attempts_written) == kill_at_write:
            os.kill(os.getpid(), signal.SIGKILL)

    async def main() -> None:
        together = asyncio.Barrier(FINISHING_TOGETHER)
        fetch = collector.fetch

        async def fetch_then_wait(target: Target, session: TargetSession, history: History) -> None:
            await fetch(target, session, history)
            await together.wait()  # every target finishes in the same moment

        collector.fetch = fetch_then_wait  # type: ignore[method-assign]
        await Runner(Store(engine), lambda: NOW, contact=config.contact).run(collector)

    asyncio.run(main())


def test_sigkill_loses_no_finished_target_only_the_one_being_written(
    workspace: Workspace, loopback: Loopback
) -> None:
    """Each finished target is committed on its own: targets that finished together are
    not held back to be written with others, so a kill loses only the one in hand."""
    sites = [loopback.add(MastodonSpec().routes(NOW)) for _ in range(FINISHING_TOGETHER)]
    workspace.write_config(
        {
            "http": {"concurrency": FINISHING_TOGETHER, "timeout": 5, "deadline": 30},
            "collectors": {"fediverse": {"instances": [site.url for site in sites]}},
        }
    )
    child = f"from {__name__} import finish_together_then_die as f; f({KILLED_AT_WRITE})"
    result = subprocess.run(
        [sys.executable, "-c", child],
        cwd=workspace.root,
        env=clean_env(PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, (result.returncode, result.stderr)

    with sqlite3.connect(workspace.db) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finished = db.execute("SELECT id, target, observations FROM attempts").fetchall()
        assert len(finished) == KILLED_AT_WRITE - 1
        for attempt_id, target, observations in finished:  # each one whole
            assert observations == 39
            assert count(db, f"SELECT COUNT(*) FROM fetches WHERE attempt_id = {attempt_id}") == 6
            assert count(db, f"SELECT COUNT(*) FROM observations WHERE target = '{target}'") == 39


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
