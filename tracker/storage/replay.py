"""The queries of `tracker reparse`: which attempts to replay, their archived
fetch logs, and each attempt's outcome rewritten by the current parser."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from tracker.model import Fetched, Parsed, outcome_for
from tracker.storage.payload_archive import PayloadReader, decoded_bodies
from tracker.storage.schema import attempts, fetches, payloads


def attempts_of_runs(engine: Engine, source: str | None, since: datetime | None) -> list[Any]:
    """Attempts (id, run_id, source, target, started_at), oldest first, of every run
    with an attempt at or after `since` (all runs without it), of one source or all."""
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
        return list(connection.execute(query).all())


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


def update_attempt(connection: Connection, attempt_id: int, parsed: Parsed) -> None:
    """The attempt's platform, software and outcome as the current parser sees them."""
    connection.execute(
        update(attempts)
        .where(attempts.c.id == attempt_id)
        .values(
            platform=parsed.platform,
            software=parsed.software,
            software_version=parsed.version,
            **_outcome_after(parsed),
        )
    )


def _outcome_after(parsed: Parsed) -> dict[str, Any]:
    """A parser fix can turn a failed attempt into a good one; never the reverse
    silently: a new failure is written with its reason."""
    failure = parsed.failure
    return {
        "outcome": outcome_for(failure),
        "error_kind": failure.kind if failure else None,
        "error_detail": failure.detail if failure else None,
    }
