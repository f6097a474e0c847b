"""Running collectors: many targets in flight, one writer, one transaction per target.

`concurrency` workers take targets from one queue; each target gets its own
`TargetSession` and deadline. A worker hands its finished target to the writer
and starts its next one; the writer commits each target in its own transaction
at the loop's next turn, and does not yield while targets wait, so none waits
longer. Each target is whole, so a kill never leaves half a target, and a kill
loses only targets in flight: the one being committed, those handed over in the
same turn, and those still fetching; never one committed before. Targets were
once committed in batches of up to 64, and a kill during such a commit lost every
finished target of the batch. A commit per target costs about 0.5 ms more on
SQLite, where WAL with synchronous=NORMAL does not sync the disk at each commit
(bench/store.py). Workers do not commit themselves: one that did would start its
next target only after the commits of every target finishing with it (measured
8% slower on bench/collect.py). The writer runs on the event loop itself: a
writer thread was measured slower, because sqlite3 releases the GIL on every row
and each hand-back waited for the busy loop thread's switch interval. A target's
failure, even a bug in a parser, is recorded and the run goes on; only a
database that cannot be written stops it.

Stopping (SIGTERM, SIGINT, or the scheduler shutting down): no new target is
started, targets in flight get `STOP_GRACE` seconds to finish and are then
cancelled. A cancelled target is simply not written (each target is one
transaction, so there is nothing half-written to undo), and the run is recorded
`interrupted` with what was left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from tracker.clock import Clock
from tracker.collectors.base import Collector
from tracker.http.redaction import redact_http_logs
from tracker.http.session import HttpContext, TargetSession, user_agent
from tracker.model import Failure, Parsed, TargetResult, outcome_for
from tracker.storage.engine import describe, short_reason
from tracker.storage.history import History
from tracker.storage.store import Store
from tracker.targets import Target

log = logging.getLogger(__name__)

DEADLINE_GRACE = 5.0
STOP_GRACE = 5.0
"""Seconds targets in flight may take to finish once a stop is requested."""


class StopRequest:
    """A request to stop, safe to make from a signal handler or from any thread.

    Each collection binds it to its own event loop (`bound`), so a request wakes
    that loop at once: the scheduler runs collections in a worker thread while
    signals arrive in its main thread.
    """

    def __init__(self) -> None:
        self._requested = threading.Event()
        self._guard = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self.signals = 0

    def request(self) -> None:
        with self._guard:
            self._requested.set()
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop has closed meanwhile
                loop.call_soon_threadsafe(event.set)

    def is_set(self) -> bool:
        return self._requested.is_set()

    @contextlib.contextmanager
    def bound(self) -> Iterator[asyncio.Event]:
        """An asyncio.Event of the running loop, set when (or if already) stop is requested."""
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        with self._guard:
            self._waiters.append(waiter)
            if self._requested.is_set():
                event.set()
        try:
            yield event
        finally:
            with self._guard:
                self._waiters.remove(waiter)

    @contextlib.contextmanager
    def on_this_loop(self, handle_signals: bool) -> Iterator[asyncio.Event]:
        """`bound()`, and with `handle_signals` SIGTERM/SIGINT requesting the stop.

        The loop's own handler wakes it even when the signal lands in a resolver
        thread; the caller's handlers are put back afterwards.
        """
        with contextlib.ExitStack() as stack:
            event = stack.enter_context(self.bound())
            if handle_signals:
                loop = asyncio.get_running_loop()
                for signum in (signal.SIGTERM, signal.SIGINT):
                    stack.callback(
                        signal.signal, signum, signal.getsignal(signum) or signal.SIG_DFL
                    )
                    loop.add_signal_handler(signum, self.on_signal, signum)
                    stack.callback(loop.remove_signal_handler, signum)
            yield event

    def on_signal(self, signum: int) -> None:
        """First SIGTERM/SIGINT: stop gracefully. Second: leave at once.

        Leaving at once is as safe as a kill -9 (each target is one transaction);
        the run stays `running` until the next collection marks it `interrupted`.
        """
        self.signals += 1
        name = signal.Signals(signum).name
        if self.signals > 1:
            sys.stderr.write(f"{name} again: exiting now; targets in flight are not written\n")
            sys.stderr.flush()
            os._exit(128 + signum)
        log.warning(
            "%s: stopping: no new targets; those in flight get %.0f s to finish", name, STOP_GRACE
        )
        self.request()


@dataclass
class RunSummary:
    collector: str
    run_id: int | None
    status: str  # ok | partial | failed | skipped | interrupted
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    written: int = 0
    seconds: float = 0.0
    message: str | None = None

    def count(self, result: TargetResult, written: int) -> None:
        self.written += written
        if result.outcome == "ok":
            self.ok += 1
        elif result.outcome == "skipped":
            self.skipped += 1
        else:
            self.failed += 1

    def line(self) -> str:
        if self.status == "skipped":
            return f"{self.collector}: skipped, {self.message}"
        counts = (
            f"{self.ok + self.failed + self.skipped} targets: {self.ok} ok, "
            f"{self.failed} failed, {self.skipped} skipped; {self.written} observations written"
        )
        tail = f" ({self.status}: {self.message})" if self.message else ""
        return f"{self.collector}: {counts} in {self.seconds:.1f} s{tail}"


class StorageFailed(Exception):
    """The writer could not commit; the run stops and the CLI exits 1."""


OnTarget = Callable[[TargetResult], None]


class Runner:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        contact: str,
        on_start: Callable[[str, int], None] | None = None,
        on_target: OnTarget | None = None,
        stop: asyncio.Event | None = None,
        stop_grace: float = STOP_GRACE,
    ) -> None:
        self.store = store
        self.clock = clock
        self.contact = contact
        """The `contact:` of the config, sent in every User-Agent (collectors never see it)."""
        self.history = History(store.engine, clock)
        self.on_start = on_start
        self.on_target = on_target
        self.stop = stop
        self.stop_grace = stop_grace
        self.abandoned = 0

    async def run(self, collector: Collector[Any]) -> RunSummary:
        started = time.monotonic()
        name = collector.name
        reason = collector.unavailable()
        run_id = self.store.start_run(name, self.clock())
        if reason is not None:
            self.store.finish_run(run_id, self.clock(), "skipped", {}, reason)
            return RunSummary(name, run_id, "skipped", message=reason)
        targets = list(collector.targets(self.history))
        if self.on_start:
            self.on_start(name, len(targets))
        redact_http_logs(collector.secrets())
        context = HttpContext(
            settings=collector.http,
            user_agent=user_agent(self.contact),
            clock=self.clock,
            respect_robots=collector.respect_robots,
            secrets=collector.secrets(),
        )
        summary = RunSummary(name, run_id, "ok")
        await self._collect_all(collector, context, run_id, targets, summary)
        summary.seconds = time.monotonic() - started
        self._finish(run_id, summary, len(targets))
        return summary

    async def _collect_all(
        self,
        collector: Collector[Any],
        context: HttpContext,
        run_id: int,
        targets: list[Target],
        summary: RunSummary,
    ) -> None:
        """Workers fetch, one writer commits each finished target on its own; raises
        StorageFailed if a commit fails (no target is started or written after that)."""
        storage_error: str | None = None
        concurrency = context.settings.concurrency
        queue: asyncio.Queue[TargetResult | None] = asyncio.Queue(maxsize=concurrency * 2)
        pending = iter(targets)
        in_flight = 0

        async def worker() -> None:
            nonlocal in_flight
            for target in pending:
                if storage_error is not None or self._stopping():
                    return
                in_flight += 1
                result = await self.collect_one(collector, context, target)
                in_flight -= 1
                await queue.put(result)

        async def writer() -> None:
            nonlocal storage_error
            while (result := await queue.get()) is not None:
                if storage_error is None:  # else keep draining so no worker blocks
                    storage_error = self._commit(run_id, result, summary)

        writing = asyncio.create_task(writer())
        workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, len(targets)))]
        cutting = asyncio.create_task(self._cancel_after_grace(workers)) if workers else None
        if workers:
            await asyncio.wait(workers)
        if cutting is not None:
            cutting.cancel()
        self.abandoned = in_flight
        for task in workers:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error  # a bug in the runner itself: targets catch their own
        await queue.put(None)
        await writing
        if storage_error is not None:
            raise StorageFailed(storage_error)

    def _commit(self, run_id: int, result: TargetResult, summary: RunSummary) -> str | None:
        """Commit one finished target on its own; the reason if the database refused it."""
        try:
            written = self.store.write_target(run_id, result)
        except SQLAlchemyError as exc:
            return f"cannot write to {describe(self.store.engine)}: {short_reason(exc)}"
        summary.count(result, written)
        if self.on_target:
            self.on_target(result)
        return None

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    async def _cancel_after_grace(self, workers: list[asyncio.Task[None]]) -> None:
        """Once stop is requested, give targets in flight `stop_grace` seconds, then cancel."""
        if self.stop is None:
            return
        await self.stop.wait()
        await asyncio.sleep(self.stop_grace)
        for task in workers:
            task.cancel()

    def _finish(self, run_id: int, summary: RunSummary, total: int) -> None:
        left = total - summary.ok - summary.failed - summary.skipped
        if self._stopping() and left:
            summary.status = "interrupted"
            summary.message = f"stopped: {left} of {total} targets not collected" + (
                f" ({self.abandoned} cancelled in flight)" if self.abandoned else ""
            )
        elif summary.failed and not summary.ok:
            summary.status = "failed"
        elif summary.failed:
            summary.status = "partial"
        self.store.finish_run(
            run_id,
            self.clock(),
            summary.status,
            {
                "targets_ok": summary.ok,
                "targets_failed": summary.failed,
                "targets_skipped": summary.skipped,
                "observations_written": summary.written,
            },
            summary.message,
        )

    async def collect_one(
        self, collector: Collector[Any], context: HttpContext, target: Target
    ) -> TargetResult:
        started_at = self.clock()
        records: Sequence[Any] = ()
        failure: Failure | None = None
        try:
            async with TargetSession(context, target.base_url) as session:
                try:
                    async with asyncio.timeout(context.settings.deadline + DEADLINE_GRACE):
                        await collector.fetch(target, session, self.history)
                except TimeoutError:
                    failure = Failure("deadline", "the target's deadline passed")
                records = list(session.records)
            parsed = collector.parse(target.key, records, started_at)
        except Exception as exc:  # a bug in one collector must not end the run
            log.debug("target %s failed internally:\n%s", target.key, traceback.format_exc())
            parsed = Parsed()
            failure = Failure("internal", context.redact(f"{type(exc).__name__}: {exc}"))
        if parsed.failure is not None:
            failure = parsed.failure
        elif parsed.observations:
            failure = None  # the safety net fired, but what arrived in time is good
        return TargetResult(
            source=collector.name,
            target=target.key,
            outcome=outcome_for(failure),
            started_at=started_at,
            fetched=records,
            parsed=parsed,
            failure=failure,
        )
