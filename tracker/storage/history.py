"""Read-only questions collectors ask about what is already stored.

Incremental collectors (Wikipedia, Tumblr) fetch only the days they lack, and a
title the API does not know is not asked for again every run; both need to
look at the database before fetching.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, or_, select

from tracker.clock import Clock, system_clock
from tracker.storage.schema import (
    OBSERVATIONS_FROM,
    attempts,
    fetches,
    points,
    series,
    servers,
)


@dataclass(frozen=True)
class LastAttempt:
    outcome: str
    error_kind: str | None
    started_at: datetime


@dataclass(frozen=True)
class Check:
    """The outcome of the last attempt that really asked a server about a target."""

    error_kind: str | None
    error_detail: str | None
    started_at: datetime


class History:
    def __init__(self, engine: Engine | None, clock: Clock = system_clock) -> None:
        self.engine = engine
        self.clock = clock

    def latest_observed(
        self, source: str, target: str, metric: str, period: str
    ) -> datetime | None:
        """The newest `observed_at` stored for one series, or None."""
        if self.engine is None:
            return None
        query = (
            select(func.max(points.c.observed_at))
            .select_from(OBSERVATIONS_FROM)
            .where(
                series.c.source == source,
                series.c.target == target,
                series.c.metric == metric,
                series.c.period == period,
            )
        )
        with self.engine.connect() as connection:
            value: datetime | None = connection.execute(query).scalar()
        return value

    def servers_in_state(self, state: str) -> list[str]:
        """Hosts the crawl knows in this state (`alive`: measured by `tracker collect` too)."""
        if self.engine is None:
            return []
        query = select(servers.c.host).where(servers.c.state == state).order_by(servers.c.host)
        with self.engine.connect() as connection:
            return list(connection.execute(query).scalars())

    def measured_within(self, source: str, period: timedelta) -> set[str]:
        """Targets of this source measured (outcome ok) in the last `period`, by any run:
        `tracker crawl` measures servers under the fediverse source too."""
        if self.engine is None:
            return set()
        query = (
            select(attempts.c.target)
            .where(
                attempts.c.source == source,
                attempts.c.outcome == "ok",
                attempts.c.started_at >= self.clock() - period,
            )
            .distinct()
        )
        with self.engine.connect() as connection:
            return set(connection.execute(query).scalars())

    def answered_urls(self, source: str, target: str, kinds: Sequence[str]) -> list[str]:
        """The URLs of every request of these kinds for one target that got a 200.

        What was asked, not what was stored: a range whose answer gave nothing usable
        was still asked, and asking it again would give the same.
        """
        if self.engine is None:
            return []
        query = (
            select(fetches.c.url)
            .join(attempts, attempts.c.id == fetches.c.attempt_id)
            .where(
                attempts.c.source == source,
                attempts.c.target == target,
                fetches.c.kind.in_(list(kinds)),
                fetches.c.status == 200,
            )
        )
        with self.engine.connect() as connection:
            return list(connection.execute(query).scalars())

    def last_attempt(self, source: str, target: str) -> LastAttempt | None:
        if self.engine is None:
            return None
        query = (
            select(attempts.c.outcome, attempts.c.error_kind, attempts.c.started_at)
            .where(attempts.c.source == source, attempts.c.target == target)
            .order_by(attempts.c.started_at.desc(), attempts.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else LastAttempt(row.outcome, row.error_kind, row.started_at)

    def last_check(self, source: str, target: str, *, skipping: str) -> Check | None:
        """The newest attempt whose error kind is not `skipping` (a skip that asked nothing).

        `last_attempt` would return the skip itself: Wikipedia's week-long wait for
        an unknown title would then end after one skipped run.
        """
        if self.engine is None:
            return None
        column = attempts.c
        query = (
            select(column.error_kind, column.error_detail, column.started_at)
            .where(
                column.source == source,
                column.target == target,
                or_(column.error_kind.is_(None), column.error_kind != skipping),
            )
            .order_by(column.started_at.desc(), column.id.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else Check(row.error_kind, row.error_detail, row.started_at)
