"""What ran, what failed and why, as data: the queries behind `tracker status`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, func, select

from tracker.storage.schema import attempts, rejections, runs


@dataclass(frozen=True)
class RunRow:
    id: int
    collector: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    ok: int
    failed: int
    skipped: int
    written: int
    message: str | None


@dataclass(frozen=True)
class TargetRow:
    source: str
    target: str
    platform: str | None
    last_ok: datetime | None
    last_error_at: datetime | None
    last_error_kind: str | None
    last_error_detail: str | None
    last_outcome: str
    rejected_last: int


def recent_runs(engine: Engine, limit: int = 10) -> list[RunRow]:
    query = select(runs).order_by(runs.c.started_at.desc(), runs.c.id.desc()).limit(limit)
    with engine.connect() as connection:
        return [
            RunRow(
                row.id,
                row.collector,
                row.started_at,
                row.finished_at,
                row.status,
                row.targets_ok,
                row.targets_failed,
                row.targets_skipped,
                row.observations_written,
                row.message,
            )
            for row in connection.execute(query)
        ]


def target_health(engine: Engine, source: str | None = None) -> list[TargetRow]:
    """Per target: the last success, the last error with its kind, and the newest outcome."""
    a = attempts.c
    newest = (
        select(a.source, a.target, func.max(a.id).label("newest"))
        .group_by(a.source, a.target)
        .subquery()
    )
    last_ok = (
        select(a.source, a.target, func.max(a.started_at).label("at"))
        .where(a.outcome == "ok")
        .group_by(a.source, a.target)
        .subquery()
    )
    last_error_id = (
        select(a.source, a.target, func.max(a.id).label("id"))
        .where(a.outcome != "ok")
        .group_by(a.source, a.target)
        .subquery()
    )
    error = attempts.alias("error")
    latest = attempts.alias("latest")
    rejected = (
        select(rejections.c.attempt_id, func.count().label("n"))
        .group_by(rejections.c.attempt_id)
        .subquery()
    )
    query = (
        select(
            newest.c.source,
            newest.c.target,
            latest.c.platform,
            latest.c.outcome,
            last_ok.c.at,
            error.c.started_at.label("error_at"),
            error.c.error_kind,
            error.c.error_detail,
            func.coalesce(rejected.c.n, 0).label("rejected"),
        )
        .join(latest, latest.c.id == newest.c.newest)
        .outerjoin(
            last_ok, and_(last_ok.c.source == newest.c.source, last_ok.c.target == newest.c.target)
        )
        .outerjoin(
            last_error_id,
            and_(
                last_error_id.c.source == newest.c.source,
                last_error_id.c.target == newest.c.target,
            ),
        )
        .outerjoin(error, error.c.id == last_error_id.c.id)
        .outerjoin(rejected, rejected.c.attempt_id == newest.c.newest)
        .order_by(newest.c.source, newest.c.target)
    )
    if source:
        query = query.where(newest.c.source == source)
    with engine.connect() as connection:
        return [
            TargetRow(
                row.source,
                row.target,
                row.platform,
                row.at,
                row.error_at,
                row.error_kind,
                row.error_detail,
                row.outcome,
                row.rejected,
            )
            for row in connection.execute(query)
        ]
