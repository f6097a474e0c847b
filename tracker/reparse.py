"""`tracker reparse`: rebuild observations from the payload archive after a parser fix.

Runs are replayed oldest first, each (run, source) in its own transaction: the
rows a run produced are replaced by what the current parser makes of its archived
responses, and a later run then overwrites shared rows (weekly buckets) just as
it did when it was first collected. Imported rows have no payloads and stay.

The unit is the whole run because a point records the run that wrote it, not the
attempt: `--since DATE` reparses every run with an attempt at or after DATE whole,
its attempts before DATE included (a run crossing midnight would otherwise lose
the targets it polled before midnight).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine

from tracker.collectors import registry
from tracker.collectors.base import Collector
from tracker.config import Config
from tracker.model import utc
from tracker.storage.engine import write_transaction
from tracker.storage.payload_archive import PayloadReader
from tracker.storage.points import SeriesIds
from tracker.storage.replay import attempts_of_runs, load_fetched, update_attempt
from tracker.storage.store import delete_run_output, write_parsed


@dataclass
class ReparseSummary:
    attempts: int = 0
    written: int = 0
    missing_payloads: int = 0
    skipped_sources: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        text = f"reparsed {self.attempts} attempts; {self.written} observations written"
        if self.missing_payloads:
            text += (
                f"; {self.missing_payloads} attempts had pruned payloads and were left as they were"
            )
        for source, reason in self.skipped_sources.items():
            text += f"; {source}: {reason}"
        return text


def _collector_for(config: Config, source: str) -> Collector[Any] | str:
    try:
        cls = registry.get(source)
    except KeyError:
        return "no such collector in this version"
    settings = config.collectors.get(source)
    if settings is None:
        try:
            settings = cls.settings_model()
        except ValidationError:
            return f"collectors.{source} is not configured"
    return cls(settings, config.http_for(source))


def reparse(
    engine: Engine,
    config: Config,
    *,
    source: str | None = None,
    since: datetime | None = None,
    on_attempt: Callable[[], None] | None = None,
) -> ReparseSummary:
    """Replay the archive, one (run, source) at a time, oldest first.

    All points a run wrote for a source are dropped and rebuilt together, because one
    attempt may write rows under other targets (a relay's per-host counts) and a point
    names only its run. So `since` selects whole runs: each (run, source) with an
    attempt at or after it is replayed with all its attempts, earlier ones included.
    A run whose archive was partly pruned is left exactly as it is. Reparse never
    renames a series' platform: an entry removed from the config would otherwise
    relabel history.
    """
    summary = ReparseSummary()
    collectors: dict[str, Collector[Any] | str] = {}
    reader = PayloadReader()
    for (run_id, name), group in _runs_to_replay(engine, source, since).items():
        collector = collectors.setdefault(name, _collector_for(config, name))
        if isinstance(collector, str):
            summary.skipped_sources[name] = collector
            continue
        with write_transaction(engine) as connection:
            loaded = [(attempt, *load_fetched(connection, attempt.id, reader)) for attempt in group]
            if not all(complete for _, _, complete in loaded):
                summary.missing_payloads += len(group)
                continue
            delete_run_output(connection, run_id, name, [attempt.id for attempt in group])
            ids = SeriesIds(update_platform=False)
            for attempt, records, _ in loaded:
                parsed = collector.parse(attempt.target, records, attempt.started_at)
                summary.written += write_parsed(connection, attempt.id, run_id, name, parsed, ids)
                update_attempt(connection, attempt.id, parsed)
        summary.attempts += len(group)
        if on_attempt:
            on_attempt()
    return summary


def _runs_to_replay(
    engine: Engine, source: str | None, since: datetime | None
) -> dict[tuple[int, str], list[Any]]:
    """The attempts to replay grouped by (run, source), oldest run first.

    With `since`, a group is kept whole when any of its attempts started at or
    after it: deleting a run's points and rebuilding only its later attempts
    would drop the targets it polled before `since`.
    """
    since = utc(since) if since else None  # stored times are aware UTC, whole seconds
    todo = attempts_of_runs(engine, source, since)
    groups: dict[tuple[int, str], list[Any]] = {}
    for attempt in todo:
        groups.setdefault((attempt.run_id, attempt.source), []).append(attempt)
    if since:
        groups = {
            key: group
            for key, group in groups.items()
            if any(attempt.started_at >= since for attempt in group)
        }
    return groups
