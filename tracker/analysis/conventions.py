"""Time conventions every figure follows (UTC throughout), in one place.

- A day is a UTC calendar day, numbered as days since 1970-01-01 (day 0).
- The daily series of a target is its last (trustworthy) observation of each day.
- Weeks are ISO weeks, Monday to Sunday, labelled by the Monday; a week's value is
  the last observation before the next Monday 00:00.
- Series with period `day` or `week` already hold per-period values: they are summed,
  never differenced.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pandas as pd

DAY_SECONDS = 86_400
EPOCH = date(1970, 1, 1)

CUMULATIVE_METRICS = frozenset({"users_total", "posts_total", "comments_total"})
"""Counters that only grow in reality: a dip that recovers is an artefact, a fall is flagged."""

ACCOUNT_METRICS = ("users_total",)
ACTIVE_METRICS = ("users_active_month",)
"""Monthly active users. Bluesky's `users_active` (accounts not deactivated) is not activity."""

IntArray = npt.NDArray[np.int64]


def day_of(seconds: IntArray) -> IntArray:
    """UTC day numbers of Unix times (floor division, correct before 1970 too)."""
    return np.floor_divide(seconds, DAY_SECONDS)


def week_of(days: IntArray) -> IntArray:
    """ISO week numbers (Monday-based) of day numbers; day 0 was a Thursday."""
    return np.floor_divide(days + 3, 7)


def monday_of(weeks: IntArray) -> IntArray:
    """The day number of each week's Monday."""
    return weeks * 7 - 3


def day_number(value: date | datetime) -> int:
    if isinstance(value, datetime):
        value = value.astimezone(UTC).date()
    return (value - EPOCH).days


def day_date(day: int) -> date:
    return EPOCH + timedelta(days=int(day))


def timestamps(days: IntArray | pd.Series) -> pd.DatetimeIndex:
    """Day numbers as UTC midnight timestamps, for tidy frames and charts."""
    values = np.asarray(days, dtype=np.int64)
    return pd.DatetimeIndex(pd.to_datetime(values, unit="D", utc=True))
