"""`tracker schedule` as a service: restarts, missed slots, signals, the shared lock."""

from __future__ import annotations

import json
import os
import pickle
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, text

from tests.conftest import Workspace, clean_env
from tests.support.loopback import Loopback, Reply
from tests.support.sites import MastodonSpec
from tracker.lock import database_lock

SCHEDULE_TIMEOUT = 60


class Scheduler:
    """`tracker schedule` in a subprocess, its stderr in a file we can read as it grows."""

    def __init__(self, workspace: Workspace, name: str = "scheduler") -> None:
        self.log = workspace.root / f"{name}.log"
        self.handle = self.log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tracker", "schedule", "--config", str(workspace.config)],
            cwd=workspace.root,
            env=clean_env(**workspace.env),
            stdout=subprocess.DEVNULL,
            stderr=self.handle,
        )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, fragment: str, timeout: float = SCHEDULE_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while fragment not in self.text():
            assert self.process.poll() is None, f"scheduler exited:\n{self.text()}"
            assert time.monotonic() < deadline, f"no {fragment!r} in:\n{self.text()}"
            time.sleep(0.05)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 40) -> tuple[int, float]:
        """Send `signum`; returns the exit code and the seconds it took to exit."""
        started = time.monotonic()
        self.process.send_signal(signum)
        code = self.process.wait(timeout=timeout)
        self.handle.close()
        return code, time.monotonic() - started


def url_of(workspace: Workspace) -> str:
    return workspace.env.get("TRACKER_DB_URL") or f"sqlite:///{workspace.db}"


def query(workspace: Workspace, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(url_of(workspace))
    try:
        with engine.begin() as connection:
            result = connection.execute(text(sql), params)
            return list(result.all()) if result.returns_rows else []
    finally:
        engine.dispose()


def runs(workspace: Workspace) -> list[tuple[Any, ...]]:
    rows = query(workspace, "SELECT id, collector, status, message FROM runs ORDER BY id")
    return [tuple(row) for row in rows]


def stored_next_run(workspace: Workspace, job: str) -> datetime:
    sql = "SELECT next_run_time FROM apscheduler_jobs WHERE id = :job"
    ((timestamp,),) = query(workspace, sql, job=job)
    return datetime.fromtimestamp(timestamp, UTC)


def job_state(workspace: Workspace, job: str) -> dict[str, Any]:
    ((blob,),) = query(workspace, "SELECT job_state FROM apscheduler_jobs WHERE id = :job", job=job)
    state: dict[str, Any] = pickle.loads(blob)
    return state


def rewind_job(workspace: Workspace, job: str, by: timedelta) -> None:
    """Simulate downtime: move the job's stored next run time back, as if we had been away.

    APScheduler 3 keeps the time twice: in the indexed column and in the pickled state.
    """
    state = job_state(workspace, job)
    state["next_run_time"] -= by
    query(
        workspace,
        "UPDATE apscheduler_jobs SET next_run_time = :at, job_state = :state WHERE id = :job",
        at=state["next_run_time"].timestamp(),
        state=pickle.dumps(state),
        job=job,
    )


def fleet(loopback: Loopback, count: int, hanging: int = 0) -> list[str]:
    now = datetime.now(UTC)
    urls = [loopback.add(MastodonSpec().routes(now)).url for _ in range(count)]
    hang = {"*": Reply(hang=True)}
    return urls + [loopback.add(hang).url for _ in range(hanging)]


def configure(workspace: Workspace, instances: list[str], schedule: dict[str, str]) -> None:
    workspace.write_config(
        {
            "http": {"timeout": 60, "deadline": 120, "retries": 0, "concurrency": 8},
            "collectors": {"fediverse": {"instances": instances}},
            "schedule": {"report": "off", **schedule},
        }
    )


def test_a_restart_after_downtime_runs_each_missed_job_once(
    workspace: Workspace, loopback: Loopback
) -> None:
    check_restarts_run_missed_jobs_once(workspace, loopback)


def check_restarts_run_missed_jobs_once(workspace: Workspace, loopback: Loopback) -> None:
    """Shared with the PostgreSQL variant (tests/test_schedule_postgres.py)."""
    configure(workspace, fleet(loopback, 2), {"fediverse": "every 1h", "report": "every 1d"})
    first = Scheduler(workspace, "first")
    first.wait_for("fediverse: scheduled: every 1h, next run ")
    first.wait_for("report: scheduled: every 1d, next run ")
    assert first.stop()[0] == 0
    assert runs(workspace) == []  # nothing was due: starting does not run anything
    due = stored_next_run(workspace, "fediverse")
    state = job_state(workspace, "fediverse")
    assert (state["coalesce"], state["max_instances"], state["misfire_grace_time"]) == (
        True,
        1,
        3600,
    )
    assert state["func"] == "tracker.schedule:run_job"
    assert state["args"] == ("fediverse",)
    assert timedelta(0) < due - datetime.now(UTC) <= timedelta(hours=1, minutes=1)

    # Down for four hourly slots and one daily one.
    rewind_job(workspace, "fediverse", timedelta(hours=4))
    rewind_job(workspace, "report", timedelta(days=1))
    second = Scheduler(workspace, "second")
    second.wait_for("fediverse: every 1h; missed 4 slots while stopped (the last ")
    second.wait_for("report: every 1d; missed 1 slot while stopped (the last ")
    second.wait_for("report: written to ")
    time.sleep(2)  # a doubled run would be under way by now
    code, _ = second.stop()
    assert code == 0, second.text()
    assert [(run[1], run[2]) for run in runs(workspace)] == [("fediverse", "ok")]
    # The report ran after the collection that was due with it, and shows its data.
    text = second.text()
    assert text.index("fediverse: 2 targets: 2 ok") < text.index("report: writing")
    summary = json.loads((workspace.root / "data/reports/latest/summary.json").read_text())
    assert summary["empty"] is False
    assert stored_next_run(workspace, "fediverse") - due < timedelta(minutes=2)
    assert "Traceback" not in second.text()

    # Nothing missed now: a third start runs nothing and keeps the timetable.
    third = Scheduler(workspace, "third")
    third.wait_for("fediverse: every 1h, next run ")
    time.sleep(1.5)
    assert third.stop()[0] == 0
    assert len(runs(workspace)) == 1
    assert "missed" not in third.text()


def test_sigterm_mid_job_exits_cleanly_and_the_run_is_caught_up_at_the_next_start(
    workspace: Workspace, loopback: Loopback
) -> None:
    healthy = fleet(loopback, 3)
    configure(workspace, healthy + fleet(loopback, 0, hanging=2), {"fediverse": "every 2s"})
    scheduler = Scheduler(workspace)
    scheduler.wait_for("fediverse: collecting")
    deadline = time.monotonic() + 30
    with sqlite3.connect(workspace.db, timeout=30) as db:
        while db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] < 3:
            assert time.monotonic() < deadline, scheduler.text()
            time.sleep(0.05)
    code, took = scheduler.stop()
    text = scheduler.text()
    assert code == 0, text
    assert 4.5 <= took < 15, text  # the hanging targets had their 5 s, then were cancelled
    assert "SIGTERM: stopping: no new jobs; fediverse gets 5 s for its targets in flight" in text
    assert "Traceback" not in text
    (run,) = runs(workspace)
    assert run[1:] == (
        "fediverse",
        "interrupted",
        "stopped: 2 of 5 targets not collected (2 cancelled in flight)",
    )
    with sqlite3.connect(workspace.db) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == 3
        assert db.execute("SELECT COUNT(*) FROM observations").fetchone()[0] == 3 * 39

    # The next start, with the hanging servers gone and an hourly timetable (so only the
    # catch-up can run it now), collects again at once.
    configure(workspace, healthy, {"fediverse": "every 1h"})
    again = Scheduler(workspace, "again")
    again.wait_for(f"fediverse: its last run (#{run[0]}, started ")
    again.wait_for("was interrupted: runs again now")
    again.wait_for("fediverse: 3 targets: 3 ok")
    assert again.stop()[0] == 0
    assert [r[2] for r in runs(workspace)] == ["interrupted", "ok"]
    assert "timetable changed from [every 2s] to every 1h" in again.text()


def test_a_slot_that_finds_the_lock_held_is_skipped_with_one_line(
    workspace: Workspace, loopback: Loopback
) -> None:
    configure(workspace, fleet(loopback, 1), {"fediverse": "every 1s"})
    workspace.db.parent.mkdir(parents=True, exist_ok=True)
    with database_lock(f"sqlite:///{workspace.db}"):  # a `tracker collect` of this process
        scheduler = Scheduler(workspace)
        scheduler.wait_for("fediverse: slot skipped: another collection holds the lock on ")
        assert runs(workspace) == []
    scheduler.wait_for("fediverse: 1 targets: 1 ok")
    assert scheduler.stop()[0] == 0
    skipped = [line for line in scheduler.text().splitlines() if "slot skipped" in line]
    assert skipped[0].endswith(
        f"another collection holds the lock on {workspace.db} (pid {os.getpid()} "
        f"on {socket.gethostname()}); try again when it has finished"
    )


def test_a_second_scheduler_on_the_same_database_exits_75(
    workspace: Workspace, loopback: Loopback
) -> None:
    configure(workspace, fleet(loopback, 1), {"fediverse": "every 1h"})
    first = Scheduler(workspace)
    first.wait_for("fediverse: scheduled: ")
    second = workspace.run("schedule")
    assert second.returncode == 75
    assert second.stderr.strip().splitlines()[-1] == (
        f"error: another scheduler holds the lock on {workspace.db} "
        f"(pid {first.process.pid} on {socket.gethostname()}); "
        "try again when it has finished"
    )
    assert first.stop()[0] == 0
