"""Every write the collectors, `import` and `reparse` make, in SQLAlchemy Core.

Core `executemany` because it is about ten times faster than ORM `add_all` here.
One target's whole result (fetch log, payloads, rejections, observations) is one
transaction, committed as soon as the target finishes (tracker/runner.py), so a crash
or kill leaves each target either fully written or not at all, and loses only targets
in flight, never one committed before.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update

from tracker.model import Failure, Parsed, TargetResult, utc
from tracker.storage.engine import write_transaction
from tracker.storage.payload_archive import NewBody, PayloadWriter, digest_of, stream_keys
from tracker.storage.points import (
    SeriesIds,
    delete_run_points,
    observation_rows,
    upsert_rows,
)
from tracker.storage.schema import attempts, fetches, rejections, runs


def insert_run(
    connection: Connection,
    collector: str,
    started_at: datetime,
    status: str,
    *,
    finished_at: datetime | None = None,
    message: str | None = None,
) -> int:
    """A new `runs` row (this process and host recorded, so abandoned runs can be told)."""
    result = connection.execute(
        runs.insert().values(
            collector=collector,
            started_at=utc(started_at),
            finished_at=utc(finished_at) if finished_at else None,
            status=status,
            targets_ok=0,
            targets_failed=0,
            targets_skipped=0,
            observations_written=0,
            pid=os.getpid(),
            host=socket.gethostname()[:255],
            message=message,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


class Store:
    """The writes of a run: start it, write each target, finish it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.series_ids = SeriesIds()
        self.archive = PayloadWriter()
        """Archives bodies against each stream's previous version (payload_archive.py)."""

    def start_run(self, collector: str, started_at: datetime) -> int:
        with write_transaction(self.engine) as connection:
            return insert_run(connection, collector, started_at, "running")

    def finish_run(
        self,
        run_id: int,
        finished_at: datetime,
        status: str,
        counts: Mapping[str, int],
        message: str | None = None,
    ) -> None:
        with write_transaction(self.engine) as connection:
            connection.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(finished_at=utc(finished_at), status=status, message=message, **counts)
            )

    def mark_abandoned_runs(self, now: datetime) -> int:
        """Runs left 'running' by a process that no longer exists become 'interrupted'."""
        host = socket.gethostname()[:255]
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(runs.c.id, runs.c.pid, runs.c.host).where(runs.c.status == "running")
            ).all()
        dead = [row.id for row in rows if row.host == host and not _pid_alive(row.pid)]
        if not dead:
            return 0
        with write_transaction(self.engine) as connection:
            connection.execute(
                update(runs)
                .where(runs.c.id.in_(dead), runs.c.status == "running")
                .values(
                    status="interrupted",
                    finished_at=utc(now),
                    message="the process ended before the run was finished",
                )
            )
        return len(dead)

    def write_target(
        self,
        run_id: int,
        result: TargetResult,
        also: Callable[[Connection], None] | None = None,
    ) -> int:
        """Commit one finished target on its own; returns the observations written.

        The runner calls this for each target as soon as it finishes, so a crash
        loses only targets in flight, never one that finished before. A commit per
        target is cheap on SQLite (WAL with synchronous=NORMAL does not sync the
        disk at each commit, see engine.py): about 0.5 ms more per target (bench/store.py).
        """
        return self.write_targets(run_id, [result], also)[0]

    def write_targets(
        self,
        run_id: int,
        results: Sequence[TargetResult],
        also: Callable[[Connection], None] | None = None,
    ) -> list[int]:
        """Write whole targets in one transaction; returns observations written per target.

        For bulk writers (benchmarks, tests) that want all or none of the set; a
        collection commits each target on its own with `write_target`.
        """
        try:
            with write_transaction(self.engine) as connection:
                written = write_targets(connection, run_id, results, self.series_ids, self.archive)
                if also is not None:  # e.g. the crawl's server state, in the same commit
                    also(connection)
        except BaseException:
            self.series_ids.rollback()
            self.archive.rollback()
            raise
        self.series_ids.commit()
        self.archive.commit()
        return written


def set_run_written(connection: Connection, run_id: int, written: int) -> None:
    """Record how many observations a run wrote (known only once it has written them)."""
    connection.execute(
        runs.update().where(runs.c.id == run_id).values(observations_written=written)
    )


def write_targets(
    connection: Connection,
    run_id: int,
    results: Sequence[TargetResult],
    ids: SeriesIds | None = None,
    archive: PayloadWriter | None = None,
) -> list[int]:
    """Attempts, fetch log, archive, rejections and observations of several targets.

    Statements are batched across the targets (one executemany per table), which
    matters when a collection commits thousands of small targets. `archive` stores
    the new bodies (a fresh writer, with no memory of earlier versions, if None).
    """
    bodies: list[NewBody] = []
    fetch_rows: list[dict[str, Any]] = []
    rejection_rows: list[dict[str, Any]] = []
    written: list[int] = []
    for result in results:
        parsed = result.parsed
        rows = observation_rows(result.source, run_id, parsed.observations)
        count = upsert_rows(connection, rows, ids)
        attempt_id = _insert_attempt(connection, run_id, result, count)
        fetch_rows.extend(_fetch_rows(attempt_id, result, bodies))
        rejection_rows.extend(_rejection_rows(attempt_id, parsed))
        written.append(count)
    if bodies:
        keys = (archive or PayloadWriter()).write(connection, bodies)
        for row in fetch_rows:
            if row["payload_id"] is not None:
                row["payload_id"] = keys[row["payload_id"]]
    if fetch_rows:
        connection.execute(fetches.insert(), fetch_rows)
    if rejection_rows:
        connection.execute(rejections.insert(), rejection_rows)
    return written


def write_parsed(
    connection: Connection,
    attempt_id: int,
    run_id: int,
    source: str,
    parsed: Parsed,
    ids: SeriesIds | None = None,
) -> int:
    """An existing attempt's rejections and observations (reparse); returns rows written."""
    rows = _rejection_rows(attempt_id, parsed)
    if rows:
        connection.execute(rejections.insert(), rows)
    written = upsert_rows(connection, observation_rows(source, run_id, parsed.observations), ids)
    connection.execute(
        update(attempts).where(attempts.c.id == attempt_id).values(observations=written)
    )
    return written


def _rejection_rows(attempt_id: int, parsed: Parsed) -> list[dict[str, Any]]:
    return [
        {
            "attempt_id": attempt_id,
            "metric": item.metric,
            "raw_value": item.raw,
            "reason": item.reason,
        }
        for item in parsed.rejections
    ]


def _insert_attempt(connection: Connection, run_id: int, result: TargetResult, written: int) -> int:
    parsed = result.parsed
    failure: Failure | None = result.failure or parsed.failure
    inserted = connection.execute(
        attempts.insert(),
        {
            "run_id": run_id,
            "source": result.source,
            "target": result.target,
            "outcome": result.outcome,
            "error_kind": failure.kind if failure else None,
            "error_detail": failure.detail if failure else None,
            "platform": parsed.platform,
            "software": (parsed.software or None) and parsed.software[:64],
            "software_version": (parsed.version or None) and parsed.version[:128],
            "started_at": utc(result.started_at),
            "observations": written,
        },
    )
    key = inserted.inserted_primary_key
    assert key is not None
    return int(key[0])


def _fetch_rows(
    attempt_id: int, result: TargetResult, bodies: list[NewBody]
) -> list[dict[str, Any]]:
    """The fetch log of one attempt; each body goes into `bodies`, to be archived once
    by content hash, with its stream (payload_archive.py)."""
    rows = []
    fetched = result.fetched
    streams = stream_keys(result.source, result.target, (item.kind[:64] for item in fetched))
    for seq, (item, stream) in enumerate(zip(fetched, streams, strict=True)):
        digest = None
        if item.body is not None:
            digest = digest_of(item.body)
            bodies.append(NewBody(digest, item.body, stream, item.fetched_at))
        rows.append(
            {
                "attempt_id": attempt_id,
                "seq": seq,
                "kind": item.kind[:64],
                "method": item.method,
                "url": item.url,
                "final_url": item.final_url,
                "status": item.status,
                "error_kind": item.error_kind,
                "error_detail": item.error_detail,
                "elapsed_ms": item.elapsed_ms,
                "bytes": len(item.body) if item.body is not None else 0,
                "attempts": item.attempts,
                "content_type": (item.content_type or None) and item.content_type[:255],
                "fetched_at": utc(item.fetched_at),
                "payload_id": digest,  # the digest until the archive gives its key
            }
        )
    return rows


def delete_run_output(
    connection: Connection, run_id: int, source: str, attempt_ids: Sequence[int]
) -> None:
    """Before a reparse: drop what a run wrote for a source (rows a later run rewrote are
    that run's and stay), and the rejections of its attempts."""
    connection.execute(delete(rejections).where(rejections.c.attempt_id.in_(attempt_ids)))
    delete_run_points(connection, run_id, source)


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
