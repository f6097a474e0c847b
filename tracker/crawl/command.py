"""`tracker crawl` as a Python function: one crawl, stoppable, on its own event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from tracker.clock import Clock, system_clock
from tracker.config import Config
from tracker.crawl.engine import Crawl, CrawlSummary, discover_settings
from tracker.errors import StorageError
from tracker.model import TargetResult
from tracker.runner import StopRequest
from tracker.storage.engine import describe, open_database, short_reason
from tracker.storage.store import Store


def crawl(
    config: Config,
    *,
    clock: Clock = system_clock,
    stop: StopRequest | None = None,
    handle_signals: bool = False,
    on_server: Callable[[TargetResult], None] | None = None,
) -> CrawlSummary:
    """Discover and measure; raises ConfigError without `discover`, StorageError if the
    database cannot be written. SIGTERM/SIGINT (with `handle_signals`) stop it cleanly:
    no new servers, those in flight get a few seconds, the next crawl resumes."""
    discover_settings(config)  # one clear line before anything is opened
    if handle_signals and stop is None:
        stop = StopRequest()
    engine = open_database(config.database)
    try:
        store = Store(engine)
        store.mark_abandoned_runs(clock())

        async def run() -> CrawlSummary:
            with contextlib.ExitStack() as stack:
                event = (
                    stack.enter_context(stop.on_this_loop(handle_signals))
                    if stop is not None
                    else None
                )
                return await Crawl(config, store, clock, stop=event, on_server=on_server).run()

        return asyncio.run(run())
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot write to {describe(engine)}: {short_reason(exc)}") from None
    finally:
        engine.dispose()
