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
from sqlalchemy import Connection, Engine, select, update

from tracker.collectors import registry
from tracker.collectors.base import Collector
from tracker.config import Config
from tracker.model import Fetched, Parsed, outcome_for, utc
from tracker.storage.engine import write_transaction
from tracker.storage.payload_archive import PayloadReader, decoded_bodies
from tracker.storage.points import SeriesIds
from tracker.storage.schema import attempts, fetches, payloads
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
    return cls(settings, config)


def load_fetched(
    connection: Connection, attempt_id: int, reader: PayloadReader | None = None
) -> tuple[list[Fetched], bool]:
    """An attempt's fetch log with bodies; the flag is False if a body was pruned.

    Bodies are decoded through their chains of deltas (payload_archive.py); one
    `reader` for a whole reparse decodes each stored delta once. A peer list comes
    back in its canonical form (payload_codec.py), which the parsers read alike.
    """
    column = fetches.c
    rows = connection.execute(
        select(fetches, payloads.c.sha256.label("payload_sha256"))
        .outerjoin(payloads, payloads.c.id == column.payload_id)
        .where(column.attempt_id == attempt_id)
        .order_by(column.seq)
    ).all()
    digests = {row.payload_sha256 for row in rows if row.payload_sha256 is not None}
    bodies = decoded_bodies(reader or PayloadReader(), connection, digests)
    complete = True
    records: list[Fetched] = []
    for row in rows:
        body = bodies.get(row.payload_sha256) if row.payload_sha256 is not None else None
        if body is None and row.bytes:
            complete = False
        records.append(
            Fetched(
                kind=row.kind,
                url=row.url,
                method=row.method,
                fetched_at=row.fetched_at,
                status=row.status,
                error_kind=row.error_kind,
                error_detail=row.error_detail,
                body=body,
                content_type=row.content_type,
                elapsed_ms=row.elapsed_ms,
                attempts=row.attempts,
                final_url=row.final_url,
            )
        )
    return records, complete


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
                connection.execute(
                    update(attempts)
                    .where(attempts.c.id == attempt.id)
                    .values(
                        platform=parsed.platform,
                        software=parsed.software,
                        software_version=parsed.version,
                        **_outcome_after(parsed),
                    )
                )
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
    query = select(
        attempts.c.id,
        attempts.c.run_id,
        attempts.c.source,
        attempts.c.target,
        attempts.c.started_at,
    ).order_by(attempts.c.started_at, attempts.c.id)
    if source:
        query = query.where(attempts.c.source == source)
    if since:
        touched = select(attempts.c.run_id).where(attempts.c.started_at >= since)
        query = query.where(attempts.c.run_id.in_(touched))
    with engine.connect() as connection:
        todo = connection.execute(query).all()
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


def _outcome_after(parsed: Parsed) -> dict[str, Any]:
    """A parser fix can turn a failed attempt into a good one; never the reverse
    silently: a new failure is written with its reason."""
    failure = parsed.failure
    return {
        "outcome": outcome_for(failure),
        "error_kind": failure.kind if failure else None,
        "error_detail": failure.detail if failure else None,
    }
