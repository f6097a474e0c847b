"""A collection, a crawl or a report under its lock: the same code for the CLI and the scheduler.

One collection (or crawl) at a time per database, and reports wait for each other
(tracker.lock says why). Both `tracker collect`/`crawl`/`report` and the jobs of
`tracker schedule` come through here, so the two can never lock differently.
Imports are late: `tracker collect` need not load matplotlib, nor `report` the collectors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from tracker.clock import Clock, system_clock
from tracker.config import Config

if TYPE_CHECKING:
    from tracker.crawl.engine import CrawlSummary
    from tracker.model import TargetResult
    from tracker.report.build import ReportResult
    from tracker.runner import RunSummary, StopRequest


def collect_locked(
    config: Config,
    *,
    only: Sequence[str] | None = None,
    clock: Clock = system_clock,
    on_start: Callable[[str, int], None] | None = None,
    on_target: Callable[[TargetResult], None] | None = None,
    on_summary: Callable[[RunSummary], None] | None = None,
    stop: StopRequest | None = None,
    handle_signals: bool = False,
) -> list[RunSummary]:
    """`collect()` holding the collection lock; LockHeldError when another one holds it."""
    from tracker.collect import collect
    from tracker.lock import database_lock

    with database_lock(config.database):
        return collect(
            config,
            only=only,
            clock=clock,
            on_start=on_start,
            on_target=on_target,
            on_summary=on_summary,
            stop=stop,
            handle_signals=handle_signals,
        )


def crawl_locked(
    config: Config,
    *,
    clock: Clock = system_clock,
    stop: StopRequest | None = None,
    handle_signals: bool = False,
) -> CrawlSummary:
    """`crawl()` holding the collection lock (a crawl writes what a collection writes)."""
    from tracker.crawl.command import crawl
    from tracker.lock import database_lock

    with database_lock(config.database):
        return crawl(config, clock=clock, stop=stop, handle_signals=handle_signals)


def report_locked(
    config: Config,
    *,
    clock: Clock = system_clock,
    output: Path | None = None,
    since: date | None = None,
    until: date | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_locked: Callable[[], None] = lambda: None,
) -> ReportResult | None:
    """`run_report()` once no other report writes the same folders; None if stopped waiting.

    `now` is read after the wait, so a report that queued is dated when it runs.
    """
    from tracker.lock import report_lock_path, waiting_lock
    from tracker.report.build import run_report
    from tracker.storage.engine import open_database

    lock = report_lock_path(output, config.report_output)
    with waiting_lock(lock, should_stop=should_stop) as locked:
        if not locked:
            return None
        on_locked()
        engine = open_database(config.database)
        try:
            return run_report(engine, config, now=clock(), output=output, since=since, until=until)
        finally:
            engine.dispose()
