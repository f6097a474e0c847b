"""The scheduler and the collection lock on PostgreSQL: job store and advisory locks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import Workspace, clean_env
from tests.support.loopback import Loopback
from tests.support.sites import MastodonSpec, iso, slowed
from tests.test_schedule_service import Scheduler, check_restarts_run_missed_jobs_once, configure
from tests.test_schedule_service import fleet as mastodon_fleet
from tracker.errors import LockHeldError
from tracker.lock import database_lock

NOW = datetime(2022, 11, 9, 12, 0, tzinfo=UTC)


def running_runs(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            sql = "SELECT COUNT(*) FROM runs WHERE status = 'running'"
            return int(connection.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def test_the_advisory_lock_names_its_holder_and_is_released(postgres_url: str) -> None:
    with database_lock(postgres_url):
        with pytest.raises(LockHeldError) as refused, database_lock(postgres_url):
            pass
        assert str(refused.value) == (
            f"another collection holds the lock on {shown(postgres_url)} "
            f"(pid {os.getpid()} on {socket.gethostname()}); "
            "try again when it has finished"
        )
        with database_lock(postgres_url, "scheduler"):
            pass
    with database_lock(postgres_url):
        pass


def test_two_collections_at_once_and_a_killed_holder(
    pg_workspace: Workspace, loopback: Loopback
) -> None:
    sites = [loopback.add(slowed(MastodonSpec().routes(NOW), 0.1)) for _ in range(4)]
    urls = [s.url for s in sites]
    pg_workspace.write_config(
        {"http": {"concurrency": 2}, "collectors": {"fediverse": {"instances": urls}}}
    )
    assert pg_workspace.run("collect", "--only", "fediverse", TRACKER_NOW=iso(NOW)).returncode == 0

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "tracker", "collect", "--config", str(pg_workspace.config)],
            cwd=pg_workspace.root,
            env=clean_env(TRACKER_NOW=iso(NOW), **pg_workspace.env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    processes = [start(), start()]
    outputs = [process.communicate(timeout=60) for process in processes]
    assert sorted(process.returncode for process in processes) == [0, 75], outputs
    winner = 0 if processes[0].returncode == 0 else 1
    assert outputs[1 - winner][1].splitlines() == [
        f"error: another collection holds the lock on {shown(pg_workspace.env['TRACKER_DB_URL'])} "
        f"(pid {processes[winner].pid} on {socket.gethostname()}); try again when it has finished"
    ]

    # A holder killed with SIGKILL: its connection drops, and the server frees the lock.
    pg_workspace.write_config(
        {"http": {"concurrency": 1}, "collectors": {"fediverse": {"instances": urls * 5}}}
    )
    holder = start()
    while not running_runs(pg_workspace.env["TRACKER_DB_URL"]):
        assert holder.poll() is None, holder.communicate()
        time.sleep(0.05)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    deadline = time.monotonic() + 10
    while True:
        try:
            with database_lock(pg_workspace.env["TRACKER_DB_URL"]):
                break
        except LockHeldError:
            assert time.monotonic() < deadline, "the killed holder's lock was never released"
            time.sleep(0.1)


def test_the_job_store_on_postgresql_survives_restarts(
    pg_workspace: Workspace, loopback: Loopback
) -> None:
    check_restarts_run_missed_jobs_once(pg_workspace, loopback)


def test_a_second_scheduler_on_postgresql_exits_75(
    pg_workspace: Workspace, loopback: Loopback
) -> None:
    configure(pg_workspace, mastodon_fleet(loopback, 1), {"fediverse": "every 1h"})
    first = Scheduler(pg_workspace)
    first.wait_for("fediverse: scheduled: ")
    second = pg_workspace.run("schedule")
    assert second.returncode == 75
    where = shown(pg_workspace.env["TRACKER_DB_URL"])
    last = second.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"error: another scheduler holds the lock on {where} (pid {first.process.pid} on "
    )
    assert first.stop()[0] == 0
