"""One collection at a time: the lock beside the SQLite file, its message, stale locks."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import Workspace, clean_env
from tests.support.loopback import Loopback
from tests.support.sites import MastodonSpec, iso, slowed
from tracker.errors import LockHeldError
from tracker.lock import database_lock, report_lock_path, waiting_lock

NOW = datetime(2022, 11, 9, 12, 0, tzinfo=UTC)
HOLDER = f"pid {os.getpid()} on {socket.gethostname()}"


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db' / 'tracker.db'}"
    with database_lock(url):
        lock_file = tmp_path / "db" / "tracker.db.lock"
        assert lock_file.read_text() == f"{HOLDER}\n"
        with pytest.raises(LockHeldError) as refused, database_lock(url):
            pass
        assert str(refused.value) == (
            f"another collection holds the lock on {tmp_path / 'db' / 'tracker.db'} "
            f"({HOLDER}); try again when it has finished"
        )
        assert refused.value.exit_code == 75
        with database_lock(url, "scheduler"):  # the scheduler's lock is another one
            pass
    with database_lock(url):  # released on exit
        pass
    assert lock_file.read_text() == ""


def test_a_lock_file_left_by_a_dead_process_does_not_block(tmp_path: Path) -> None:
    db = tmp_path / "tracker.db"
    (tmp_path / "tracker.db.lock").write_text("pid 999999 on elsewhere\n")
    with database_lock(f"sqlite:///{db}"):
        assert (tmp_path / "tracker.db.lock").read_text() == f"{HOLDER}\n"


def test_in_memory_databases_need_no_lock() -> None:
    with database_lock("sqlite://"), database_lock("sqlite://"):
        pass


def test_reports_wait_for_each_other(tmp_path: Path) -> None:
    lock = report_lock_path(None, tmp_path / "reports")
    assert lock == tmp_path / "reports" / ".report.lock"
    assert report_lock_path(tmp_path / "out", tmp_path / "x") == tmp_path / ".out.report.lock"
    order: list[str] = []

    def second() -> None:
        with waiting_lock(lock) as locked:
            assert locked
            order.append("second")

    with waiting_lock(lock) as locked:
        assert locked
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.6)
        order.append("first done")
    thread.join(timeout=10)
    assert order == ["first done", "second"]
    with waiting_lock(lock), waiting_lock(lock, should_stop=lambda: True) as locked:
        assert locked is False  # a stopping scheduler gives up waiting


def collect_process(workspace: Workspace, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tracker", "collect", "--config", str(workspace.config)],
        cwd=workspace.root,
        env=clean_env(TRACKER_NOW=iso(NOW), **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_collections_started_at_once_one_runs_the_other_exits_75(
    workspace: Workspace, loopback: Loopback
) -> None:
    sites = [loopback.add(slowed(MastodonSpec().routes(NOW), 0.3)) for _ in range(4)]
    workspace.write_config({"collectors": {"fediverse": {"instances": [s.url for s in sites]}}})
    assert workspace.run("collect", TRACKER_NOW=iso(NOW)).returncode == 0  # create the schema
    processes = [collect_process(workspace) for _ in range(2)]
    outputs = [process.communicate(timeout=60) for process in processes]
    codes = sorted(process.returncode for process in processes)
    assert codes == [0, 75], outputs
    winner, loser = sorted(range(2), key=lambda i: processes[i].returncode)
    assert outputs[loser][0] == ""
    assert outputs[loser][1].splitlines() == [
        f"error: another collection holds the lock on {workspace.db} "
        f"(pid {processes[winner].pid} on {socket.gethostname()}); try again when it has finished"
    ]
    assert "4 targets: 4 ok" in outputs[winner][0]
    with sqlite3.connect(workspace.db) as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2  # schema run + winner


def test_a_lock_held_by_a_killed_collection_is_not_stale(
    workspace: Workspace, loopback: Loopback
) -> None:
    sites = [loopback.add(slowed(MastodonSpec().routes(NOW), 0.5)) for _ in range(6)]
    urls = [s.url for s in sites]
    workspace.write_config(
        {"http": {"concurrency": 1}, "collectors": {"fediverse": {"instances": urls}}}
    )
    process = collect_process(workspace)
    deadline = time.monotonic() + 60
    while not workspace.db.exists() or _runs(workspace.db) < 1:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    assert (workspace.root / "tracker.db.lock").read_text().startswith(f"pid {process.pid} ")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    # The file still names the dead process, but the kernel released its lock.
    assert (workspace.root / "tracker.db.lock").read_text().startswith(f"pid {process.pid} ")
    workspace.write_config({"collectors": {"fediverse": {"instances": urls[:1]}}})
    result = workspace.run("collect", TRACKER_NOW=iso(NOW))
    assert result.returncode == 0, result.stderr
    assert "1 targets: 1 ok" in result.stdout


def _runs(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=30) as connection:
            return int(connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0
