"""`tracker collect` as a Python function: run the enabled collectors once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from tracker.clock import Clock, system_clock
from tracker.collectors import registry
from tracker.collectors.base import Collector
from tracker.config import Config
from tracker.errors import ConfigError, StorageError
from tracker.model import TargetResult
from tracker.runner import Runner, RunSummary, StopRequest, StorageFailed
from tracker.storage.engine import describe, open_database, short_reason
from tracker.storage.store import Store


def build_collectors(config: Config, only: Sequence[str] | None = None) -> list[Collector[Any]]:
    """The collectors to run: every configured and enabled one, or exactly `only`.

    A collector named with `--only` runs even when `enabled: false`, because a
    person asked for it explicitly; one that has no section in the config cannot.
    """
    names = list(dict.fromkeys(only)) if only else registry.names()
    collectors: list[Collector[Any]] = []
    for name in names:
        if name not in registry.names():
            known = ", ".join(registry.names())
            raise ConfigError(f"--only: unknown collector {name!r} (known: {known})")
        settings = config.collectors.get(name)
        if settings is None:
            if only:
                raise ConfigError(f"--only: collectors.{name} is not in {config.path}")
            continue
        if not settings.enabled and not only:
            continue
        collectors.append(registry.get(name)(settings, config.http_for(name)))
    return collectors


@dataclass(frozen=True)
class CollectorState:
    """What `tracker collectors` prints about one collector."""

    name: str
    state: str  # enabled | skipped | disabled | not configured
    reason: str | None
    summary: str
    metrics: tuple[str, ...]
    config_keys: list[str]

    def line(self) -> str:
        return f"{self.name}: {self.state}" + (f", {self.reason}" if self.reason else "")


def collector_states(config: Config) -> list[CollectorState]:
    states = []
    for cls in registry.COLLECTORS:
        settings = config.collectors.get(cls.name)
        keys = [f"collectors.{cls.name}.{key}" for key in cls.settings_model.model_fields]
        reason: str | None
        if settings is None:
            state, reason = "not configured", f"add collectors.{cls.name} to {config.path}"
        elif not settings.enabled:
            state, reason = "disabled", f"collectors.{cls.name}.enabled is false"
        else:
            unavailable = cls(settings, config.http_for(cls.name)).unavailable()
            state, reason = ("skipped", unavailable) if unavailable else ("enabled", None)
        states.append(CollectorState(cls.name, state, reason, cls.summary, cls.metrics, keys))
    return states


def collect(
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
    """Run each collector once, in registry order; raises StorageError if nothing can be written.

    `stop` ends the collection early (see tracker.runner); `handle_signals` makes
    SIGTERM and SIGINT request it (main thread only: the CLI, not the scheduler,
    whose main thread handles the signals itself).
    """
    collectors = build_collectors(config, only)
    if handle_signals and stop is None:
        stop = StopRequest()
    engine = open_database(config.database)
    try:
        store = Store(engine)
        store.mark_abandoned_runs(clock())
        summaries: list[RunSummary] = []

        async def run_all() -> None:
            with contextlib.ExitStack() as stack:
                event = (
                    stack.enter_context(stop.on_this_loop(handle_signals))
                    if stop is not None
                    else None
                )
                runner = Runner(
                    store,
                    clock,
                    contact=config.contact,
                    on_start=on_start,
                    on_target=on_target,
                    stop=event,
                )
                for collector in collectors:
                    if event is not None and event.is_set():
                        break
                    summary = await runner.run(collector)
                    summaries.append(summary)
                    if on_summary:
                        on_summary(summary)

        asyncio.run(run_all())
        return summaries
    except StorageFailed as exc:
        raise StorageError(str(exc)) from None
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot write to {describe(engine)}: {short_reason(exc)}") from None
    finally:
        engine.dispose()
