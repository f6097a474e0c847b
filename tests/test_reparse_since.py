"""`tracker reparse --since DATE` on a run that crosses midnight loses nothing.

A run's points carry its run id, not the attempt that wrote them, so reparse drops
and rebuilds a run as a whole: every run with an attempt at or after DATE is
reparsed whole, including its attempts from before DATE.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

import tracker.cli.commands
from tests.conftest import Workspace
from tests.support.loopback import Loopback
from tests.support.sites import MastodonSpec

MIDNIGHT = datetime(2022, 11, 9, tzinfo=UTC)
SITES = 4


def ticking_clock(start: datetime, step: timedelta) -> Callable[[], Callable[[], datetime]]:
    """A `clock_from_env` whose clock moves on by `step` at every reading."""
    ticks = itertools.count()

    def clock() -> datetime:
        return start + next(ticks) * step

    return lambda: clock


def started_days(workspace: Workspace) -> set[str]:
    with sqlite3.connect(workspace.db) as db:
        rows = db.execute("SELECT DISTINCT run_id, date(started_at) FROM attempts")
        return {f"run {run_id}: {day}" for run_id, day in rows}


def test_reparse_since_rebuilds_a_run_crossing_midnight_whole(
    workspace: Workspace, loopback: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    sites = [loopback.add(MastodonSpec(users=1000 + i).routes(MIDNIGHT)) for i in range(SITES)]
    workspace.write_config(
        {
            "http": {"timeout": 5, "deadline": 10, "retries": 1, "concurrency": 1},
            "collectors": {"fediverse": {"instances": [site.url for site in sites]}},
        }
    )
    # One target after another, the clock moving a few seconds per reading: the
    # run starts before midnight and ends after it.
    clock = ticking_clock(MIDNIGHT - timedelta(seconds=15), timedelta(seconds=5))
    monkeypatch.setattr(tracker.cli.commands, "clock_from_env", clock)
    result = workspace.cli("collect")
    assert result.returncode == 0, result.stderr
    assert started_days(workspace) == {"run 1: 2022-11-08", "run 1: 2022-11-09"}
    before = workspace.export()
    assert {row["target"] for row in before} == {site.url.split("//")[1] for site in sites}

    result = workspace.cli("reparse", "--since", "2022-11-09")

    assert result.returncode == 0, result.stderr
    assert workspace.export() == before  # nothing lost, nothing changed
    assert f"reparsed {SITES} attempts" in result.stdout  # the whole run, both sides of midnight
