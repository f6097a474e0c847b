"""Row filters shared by `tracker export`, the analysis loaders and `tracker report`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select

from tracker.storage.schema import OBSERVATION_COLUMNS

Names = str | tuple[str, ...] | None


@dataclass(frozen=True)
class Filters:
    """Which observations: each name filter takes one value or a tuple of values.

    `since` and `until` are inclusive UTC days.
    """

    since: date | None = None
    until: date | None = None
    source: Names = None
    metric: Names = None
    platform: Names = None
    target: Names = None
    period: Names = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        return self.apply_time(self.apply_names(query))

    def apply_names(self, query: Select[Any]) -> Select[Any]:
        for name in ("source", "metric", "platform", "target", "period"):
            value = getattr(self, name)
            if isinstance(value, str):
                query = query.where(OBSERVATION_COLUMNS[name] == value)
            elif value is not None:
                query = query.where(OBSERVATION_COLUMNS[name].in_(value))
        return query

    def apply_time(self, query: Select[Any]) -> Select[Any]:
        """Keep points inside [since, until] (whole UTC days)."""
        column = OBSERVATION_COLUMNS["observed_at"]
        start, end = self.bounds()
        if start is not None:
            query = query.where(column >= start)
        if end is not None:
            query = query.where(column < end)
        return query

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        """The time range as [start, end) instants in UTC."""
        start = datetime.combine(self.since, time(), UTC) if self.since else None
        end = datetime.combine(self.until + timedelta(days=1), time(), UTC) if self.until else None
        return start, end
