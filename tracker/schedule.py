"""`tracker schedule`: the collectors and the report on a timetable, for months unattended.

APScheduler 3 runs the jobs; its job store is a table (`apscheduler_jobs`) in the
tracker database itself, so a restart knows each job's next run time: a slot
missed while the scheduler was down runs once at start (coalesced, however many
slots were missed), and one that was not due is not run again. Each job is one
row holding only the job's name and timetable (the config is read at start).

Jobs run one at a time in one worker thread, through the same `collect()` and
`run_report()` the CLI uses, each collection holding the same lock as
`tracker collect`: jobs due together queue up, and a slot that finds another
process collecting is logged and skipped. Signals are taken synchronously in
the main thread (`sigtimedwait`, with SIGTERM and SIGINT blocked in every
thread), so a signal can never land in a worker thread and be missed.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import traceback
from datetime import UTC, timedelta
from typing import Any

from apscheduler.schedulers.background import (  # type: ignore[import-untyped]
    BackgroundScheduler,
)
from apscheduler.schedulers.base import STATE_STOPPED  # type: ignore[import-untyped]

from tracker.clock import Clock, system_clock
from tracker.config import Config
from tracker.errors import LockHeldError, StorageError, TrackerError
from tracker.runner import STOP_GRACE, RunSummary, StopRequest
from tracker.schedule_plan import CRAWL, REPORT, Job, plan, when

log = logging.getLogger("tracker.schedule")

JOB_FUNCTION = "tracker.schedule:run_job"
"""A textual reference: the job store pickles this and the job's name, nothing else."""
SHUTDOWN_WAIT = STOP_GRACE + 25.0
"""How long a stop waits for the job in progress (a report cannot be cut short)."""


class Service:
    """The running scheduler: its jobs' bodies, and the stop sequence."""

    def __init__(self, config: Config, clock: Clock = system_clock) -> None:
        self.config = config
        self.clock = clock
        self.stop = StopRequest()
        self.running: set[str] = set()
        self.scheduler: Any = None

    def run_job(self, name: str) -> None:
        if self.stop.is_set():
            # Queued behind the job that was running when the stop came: due again at
            # the next start (its slot was already booked as done in the job store).
            self._due_again(name, "stopped before it could start")
            return
        self.running.add(name)
        started = time.monotonic()
        try:
            if name == REPORT:
                self._report()
            elif name == CRAWL:
                self._crawl()
            else:
                self._collect(name)
        except TrackerError as exc:
            log.error("%s: %s", name, exc)
        except Exception as exc:  # one job's bug must not end the scheduler
            log.error("%s: internal error, please report it: %s: %s", name, type(exc).__name__, exc)
            log.debug("%s", traceback.format_exc())
        finally:
            self.running.discard(name)
            log.debug("%s: job took %.1f s", name, time.monotonic() - started)

    def _collect(self, name: str) -> None:
        from tracker.locked import collect_locked

        log.info("%s: collecting", name)
        try:
            summaries = collect_locked(
                self.config, only=[name], clock=self.clock, on_target=_log_target, stop=self.stop
            )
        except LockHeldError as exc:
            log.warning("%s: slot skipped: %s", name, exc)
            return
        for summary in summaries:
            _log_summary(summary)

    def _crawl(self) -> None:
        from tracker.locked import crawl_locked

        log.info("crawl: crawling")
        try:
            summary = crawl_locked(self.config, clock=self.clock, stop=self.stop)
        except LockHeldError as exc:
            log.warning("crawl: slot skipped: %s", exc)
            return
        level = logging.INFO if summary.status == "ok" else logging.WARNING
        log.log(level, "%s", summary.line())

    def _report(self) -> None:
        from tracker.locked import report_locked

        result = report_locked(
            self.config,
            clock=self.clock,
            should_stop=self.stop.is_set,
            on_locked=lambda: log.info("report: writing"),
        )
        if result is None:
            return
        empty = " (the database holds no observations yet)" if result.empty else ""
        log.info("report: written to %s, %d files%s", result.folder, len(result.files), empty)

    def _due_again(self, name: str, why: str) -> None:
        try:
            self.scheduler.modify_job(name, next_run_time=system_clock())
        except Exception as exc:
            log.warning("%s: %s; could not book it for the next start: %s", name, why, exc)
            return
        log.info("%s: %s; it runs at the next start", name, why)


_service: Service | None = None


def run_job(name: str) -> None:
    """What the job store's rows point at (`JOB_FUNCTION`)."""
    if _service is None:
        log.error("%s: no scheduler is running in this process", name)
        return
    _service.run_job(name)


def _log_target(result: Any) -> None:
    failure = result.failure or result.parsed.failure
    outcome = "ok" if failure is None else f"{result.outcome} {failure.kind}: {failure.detail}"
    log.debug("%s %s: %s", result.source, result.target, outcome)


def _log_summary(summary: RunSummary) -> None:
    level = logging.INFO if summary.status in ("ok", "partial", "skipped") else logging.WARNING
    log.log(level, "%s", summary.line())


def serve(config: Config, clock: Clock = system_clock) -> int:
    """Run until SIGTERM or SIGINT; returns the exit code (0 after a clean stop)."""
    from tracker.lock import database_lock

    global _service  # noqa: PLW0603 - the job store can only point at module-level code
    signals = {signal.SIGTERM, signal.SIGINT}
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    service = Service(config, clock)
    try:
        with database_lock(config.database, "scheduler"):
            _service = service
            scheduler = _start(service)
            try:
                received = _wait_for_signal(signals)
                scheduler.pause()
                running = ", ".join(sorted(service.running))
                log.info(
                    "%s: stopping: no new jobs%s",
                    signal.Signals(received).name,
                    f"; {running} gets {STOP_GRACE:.0f} s for its targets in flight"
                    if running
                    else "",
                )
                service.stop.signals = 1  # a second signal leaves at once
                service.stop.request()
                _wait_for_running(service, signals)
            finally:
                scheduler.shutdown(wait=False)
    finally:
        _service = None
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
    log.info("scheduler stopped")
    return 0


def _start(service: Service) -> Any:
    from apscheduler.executors.pool import ThreadPoolExecutor  # type: ignore[import-untyped]
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore  # type: ignore[import-untyped]
    from sqlalchemy.exc import SQLAlchemyError

    from tracker.storage.engine import describe, open_database, short_reason

    config = service.config
    jobs, notes = plan(config)
    engine = open_database(config.database)
    scheduler = _Scheduler(
        timezone=UTC,
        jobstores={"default": SQLAlchemyJobStore(engine=engine)},
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        job_defaults={"coalesce": True, "max_instances": 1},
    )
    service.scheduler = scheduler
    try:
        scheduler.start(paused=True)
        log.info("scheduler started on %s (pid %d), times in UTC", describe(engine), os.getpid())
        for note in notes:
            log.info("%s", note)
        _reconcile(scheduler, jobs)
        _catch_up_interrupted(scheduler, engine, jobs)
        _report_after_collections(scheduler)
    except BaseException as exc:
        scheduler.shutdown(wait=False)
        engine.dispose()
        if isinstance(exc, SQLAlchemyError):
            raise StorageError(f"cannot use {describe(engine)}: {short_reason(exc)}") from None
        raise
    if not jobs:
        log.warning("nothing to schedule: no collector is configured and the report is off")
    scheduler.resume()
    return scheduler


class _Scheduler(BackgroundScheduler):  # type: ignore[misc]
    """APScheduler 3's loop processes jobs once more after `shutdown()` wakes it, and
    would submit a due job to the executor it has just shut down (an error with a
    traceback in the log). Here a stopped scheduler processes nothing: the due job
    stays due in the job store and runs once at the next start."""

    def _process_jobs(self) -> float | None:
        if self.state == STATE_STOPPED:
            return None
        wait: float | None = super()._process_jobs()
        return wait


def _reconcile(scheduler: Any, jobs: list[Job]) -> None:
    """Make the stored jobs match the config, keeping the next run time of unchanged ones."""
    now = system_clock()
    wanted = {job.name for job in jobs}
    for stored in scheduler.get_jobs():
        if stored.id not in wanted:
            scheduler.remove_job(stored.id)
            log.info("%s: removed from the schedule (no longer scheduled in the config)", stored.id)
    for job in jobs:
        options = {"misfire_grace_time": max(1, int(job.timing.period))}
        stored = scheduler.get_job(job.name)
        change = ""
        if stored is None:
            stored = scheduler.add_job(
                JOB_FUNCTION,
                job.timing.trigger,
                args=[job.name],
                id=job.name,
                name=job.label,
                **options,
            )
            change = "scheduled: "
        elif stored.name != job.label:
            before = stored.name.partition(" ")[2]
            scheduler.modify_job(job.name, name=job.label, **options)
            stored = scheduler.reschedule_job(job.name, trigger=job.timing.trigger)
            change = f"timetable changed from {before} to "
        next_run = stored.next_run_time
        missed = stored._get_run_times(now) if next_run is not None else []
        if missed:
            slots = f"{len(missed)} slots" if len(missed) > 1 else "1 slot"
            log.info(
                "%s: %s; missed %s while stopped (the last %s): runs once now",
                job.name,
                job.timing.expression,
                slots,
                when(missed[-1]),
            )
        else:
            log.info(
                "%s: %s%s, next run %s", job.name, change, job.timing.expression, when(next_run)
            )


def _catch_up_interrupted(scheduler: Any, engine: Any, jobs: list[Job]) -> None:
    """A collection cut short (a stop, a crash, a reboot) runs again at start.

    Its slot was booked as done in the job store when it began; the `runs` table
    knows better. Runs left `running` by a dead process are marked first.
    """
    from tracker.storage.latest_runs import latest_runs
    from tracker.storage.store import Store

    Store(engine).mark_abandoned_runs(system_clock())
    names = [job.name for job in jobs if job.name != REPORT]
    if not names:
        return
    now = system_clock()
    for row in latest_runs(engine, names):
        stored = scheduler.get_job(row.collector)
        if row.status != "interrupted" or stored is None or stored.next_run_time <= now:
            continue
        scheduler.modify_job(row.collector, next_run_time=now)
        log.info(
            "%s: its last run (#%d, started %s) was interrupted: runs again now",
            row.collector,
            row.id,
            when(row.started_at),
        )


def _report_after_collections(scheduler: Any) -> None:
    """A report due at start waits a second, so the collections due too are queued first."""
    report = scheduler.get_job(REPORT)
    now = system_clock()
    if report is not None and report.next_run_time is not None and report.next_run_time <= now:
        scheduler.modify_job(REPORT, next_run_time=now + timedelta(seconds=1))


def _wait_for_signal(signals: set[signal.Signals]) -> int:
    while True:
        received = signal.sigtimedwait(signals, 1.0)
        if received is not None:
            return received.si_signo


def _wait_for_running(service: Service, signals: set[signal.Signals]) -> None:
    """Let the job in progress end (a collection within STOP_GRACE plus its last write)."""
    deadline = time.monotonic() + SHUTDOWN_WAIT
    while service.running:
        if time.monotonic() > deadline:
            log.warning(
                "%s still running after %.0f s: exiting without it (nothing is half-written)",
                ", ".join(sorted(service.running)),
                SHUTDOWN_WAIT,
            )
            logging.shutdown()
            os._exit(0)  # the worker thread cannot be cancelled, and would keep us alive
        received = signal.sigtimedwait(signals, 0.2)
        if received is not None:
            service.stop.on_signal(received.si_signo)  # a second signal: leave at once
