"""Migration measures around dated events, and waves.

Excess growth after an event (`effect`):

- For a level (accounts, active users: point-in-time series, or a network total's
  coverage-neutral growth level), the baseline trend is the least-squares slope per
  day over the `before` days ending the day before the event (at least half of them
  must have data). `observed` is the level change from the last value before the
  event to the last value in the `after` days starting on the event day (which must
  fall in the last quarter of that window); `expected` is the slope times the days
  between those two values; `excess = observed - expected` and `ratio =
  observed / expected` (None when the baseline is flat or falling).
- For per-period values (page views per day, registrations per week spread evenly
  over its days), `expected` is the baseline's mean per day times `after` days and
  `observed` the sum over the `after` days, scaled up if some days are missing.

A wave (`waves`) is a run of weeks whose change exceeds `k` times the median change
of the `trailing` weeks before it (at least four of them with data) and 1% of the
level; weeks flagged stale are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Days = npt.NDArray[np.int64]
Values = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Effect:
    observed: float
    expected: float
    excess: float
    ratio: float | None


@dataclass(frozen=True)
class Wave:
    start: int  # Monday day number of the first week
    end: int  # Monday day number of the last week
    peak_week: int
    peak_change: float


def level_effect(days: Days, level: Values, event: int, before: int, after: int) -> Effect | None:
    base = (days >= event - before) & (days < event) & np.isfinite(level)
    post = (days >= event) & (days < event + after) & np.isfinite(level)
    if base.sum() < max(2, before // 2) or not post.any():
        return None
    end_day = int(days[post].max())
    if end_day < event + after - max(1, after // 4):
        return None
    slope = float(np.polyfit(days[base].astype(np.float64), level[base], 1)[0])
    start_day = int(days[base].max())
    start = float(level[base][days[base] == start_day][0])
    end = float(level[post][days[post] == end_day][0])
    observed = end - start
    expected = slope * (end_day - start_day)
    ratio = observed / expected if expected > 0 else None
    return Effect(observed, expected, observed - expected, ratio)


def flow_effect(days: Days, values: Values, event: int, before: int, after: int) -> Effect | None:
    base = (days >= event - before) & (days < event) & np.isfinite(values)
    post = (days >= event) & (days < event + after) & np.isfinite(values)
    if base.sum() < max(1, before // 2) or post.sum() < max(1, after // 2):
        return None
    per_day = float(values[base].mean())
    observed = float(values[post].sum()) * after / int(post.sum())
    expected = per_day * after
    ratio = observed / expected if expected > 0 else None
    return Effect(observed, expected, observed - expected, ratio)


def spread_weeks(weeks: Days, values: Values) -> tuple[Days, Values]:
    """Weekly buckets as seven days of an even share each, for `flow_effect`."""
    days = (weeks[:, None] + np.arange(7)).ravel()
    return days.astype(np.int64), np.repeat(values / 7.0, 7)


def waves(
    weeks: Days,
    changes: Values,
    *,
    k: float = 3.0,
    trailing: int = 8,
    ignore: npt.NDArray[np.bool_] | None = None,
    levels: Values | None = None,
    min_share: float = 0.01,
) -> list[Wave]:
    """Runs of weeks whose change exceeds `k` times the trailing median change and, when
    `levels` are given, `min_share` of the level (a +30 week on a flat series of ten
    thousand is noise, not a wave)."""
    usable = np.isfinite(changes) if ignore is None else np.isfinite(changes) & ~ignore
    eligible = usable & (changes > 0)
    if levels is not None:
        eligible &= changes >= min_share * np.abs(levels)
    hot = np.zeros(len(changes), dtype=bool)
    for index in range(len(changes)):
        if not eligible[index]:
            continue
        window = slice(max(0, index - trailing), index)
        history = changes[window][usable[window]]
        if history.size < 4:
            continue
        baseline = max(float(np.median(history)), 1.0)
        hot[index] = changes[index] > k * baseline
    found: list[Wave] = []
    index = 0
    while index < len(hot):
        if not hot[index]:
            index += 1
            continue
        end = index
        while end + 1 < len(hot) and hot[end + 1] and weeks[end + 1] - weeks[end] == 7:
            end += 1
        peak = index + int(np.argmax(changes[index : end + 1]))
        found.append(
            Wave(int(weeks[index]), int(weeks[end]), int(weeks[peak]), float(changes[peak]))
        )
        index = end + 1
    return found


def shares(values: dict[str, Values]) -> dict[str, Values]:
    """Each key's share of the sum over keys, element by element (NaN where the sum is 0)."""
    stacked = np.vstack([np.nan_to_num(v) for v in values.values()])
    total = stacked.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            key: np.where(total > 0, row / total, np.nan)
            for key, row in zip(values, stacked, strict=True)
        }
