"""Daily and weekly values of each series, and their changes, following `conventions`.

All functions take and return frames keyed by `series_id`, sorted by series then
time, and work on every series at once (vectorised): the report runs them on
millions of points, the notebook on a handful.

Growth figures use the *adjusted* level (see `adjusted`), so that a tracker
re-indexing or losing a server never shows up as people arriving or leaving.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from tracker.analysis.conventions import day_of, monday_of, week_of
from tracker.analysis.quality import (
    DECREASE_CODE,
    DROPOUT_CODE,
    JUMPS,
    NONE_CODE,
    SPIKE_CODE,
    STEP_CODE,
    flag_column,
)

Ints = npt.NDArray[np.int64]


def last_per_group(keys: list[Ints]) -> npt.NDArray[np.bool_]:
    """True on the last row of each run of equal keys (rows sorted by those keys)."""
    count = len(keys[0])
    last = np.ones(count, dtype=bool)
    if count:
        differs = np.zeros(count - 1, dtype=bool)
        for key in keys:
            differs |= key[1:] != key[:-1]
        last[:-1] = differs
    return last


def group_cumsum(sid: Ints, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Running sum of `values` restarting at each new series."""
    total = np.cumsum(values)
    starts = np.r_[0, np.flatnonzero(sid[1:] != sid[:-1]) + 1] if len(sid) else np.array([], int)
    offsets = np.zeros(len(sid))
    if len(sid):
        before = np.r_[0.0, total[starts[1:] - 1]]
        offsets = np.repeat(before, np.diff(np.r_[starts, len(sid)]))
    return np.asarray(total - offsets, dtype=np.float64)


def daily_values(flagged: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time series as daily values: the last observation of each UTC day that
    is not a dropout or spike.

    Columns: series_id, day, value, jump (a step's change inside the day, excluded
    from growth), flag ('step', 'decrease' or ''), and `cumulative` when the points
    frame has it.
    """
    codes = np.asarray(flagged["flag"].cat.codes, dtype=np.int8)
    usable = (codes != DROPOUT_CODE) & (codes != SPIKE_CODE)
    sid = flagged["series_id"].to_numpy()[usable]
    day = day_of(flagged["t"].to_numpy()[usable])
    codes = codes[usable]
    last = last_per_group([sid, day])
    group = np.cumsum(np.r_[True, last[:-1]]) - 1 if len(sid) else np.array([], int)
    size = int(last.sum())
    jump = np.bincount(group, weights=flagged["jump"].to_numpy()[usable], minlength=size)
    has_step = np.bincount(group, weights=codes == STEP_CODE, minlength=size) > 0
    has_decrease = np.bincount(group, weights=codes == DECREASE_CODE, minlength=size) > 0
    day_codes = np.where(has_step, STEP_CODE, np.where(has_decrease, DECREASE_CODE, NONE_CODE))
    daily = pd.DataFrame(
        {
            "series_id": sid[last],
            "day": day[last],
            "value": flagged["value"].to_numpy()[usable][last],
            "jump": jump,
            "flag": flag_column(day_codes.astype(np.int8)),
        }
    )
    if "cumulative" in flagged.columns:
        daily["cumulative"] = flagged["cumulative"].to_numpy()[usable][last]
    return daily


def adjusted(frame: pd.DataFrame) -> npt.NDArray[np.float64]:
    """The level growth is measured on.

    The value minus the running sum of `step` jumps; for cumulative counters (a
    boolean `cumulative` column) also its running maximum, so that a fall and the
    recovery back to the old level both count as no growth (trackers losing and
    finding servers), instead of the recovery counting as new accounts.
    """
    sid = frame["series_id"].to_numpy()
    level = frame["value"].to_numpy(dtype=np.float64) - group_cumsum(sid, frame["jump"].to_numpy())
    if "cumulative" in frame.columns:
        running = pd.Series(level).groupby(sid).cummax().to_numpy(dtype=np.float64)
        level = np.where(frame["cumulative"].to_numpy(dtype=bool), running, level)
    return np.asarray(level, dtype=np.float64)


def daily_change(daily: pd.DataFrame) -> pd.DataFrame:
    """`daily` with `change`: adjusted level minus the previous day's, NaN across gaps."""
    sid, day = daily["series_id"].to_numpy(), daily["day"].to_numpy()
    level = adjusted(daily)
    change = np.full(len(daily), np.nan)
    if len(daily) > 1:
        consecutive = (sid[1:] == sid[:-1]) & (day[1:] - day[:-1] == 1)
        change[1:] = np.where(consecutive, level[1:] - level[:-1], np.nan)
    return daily.assign(change=change)


def weekly_values(daily: pd.DataFrame) -> pd.DataFrame:
    """ISO weeks (labelled by their Monday's day number) of point-in-time series.

    value: the last daily value of the week; change: the adjusted level's change from
    the previous week, defined only where both weeks have data; rate: change over
    the previous week's value; flagged: a step or decrease happened in the week.
    """
    sid, day = daily["series_id"].to_numpy(), daily["day"].to_numpy()
    week = week_of(day)
    level = adjusted(daily)
    last = last_per_group([sid, week])
    group = np.cumsum(np.r_[True, last[:-1]]) - 1 if len(sid) else np.array([], int)
    flagged = np.bincount(group, weights=daily["flag"].isin(JUMPS), minlength=int(last.sum())) > 0
    frame = pd.DataFrame(
        {
            "series_id": sid[last],
            "week": monday_of(week[last]),
            "value": daily["value"].to_numpy()[last],
            "level": level[last],
            "flagged": flagged,
        }
    )
    return with_changes(frame, "week", 7)


def with_changes(frame: pd.DataFrame, column: str, step: int) -> pd.DataFrame:
    """Add `change` (level minus previous level) and `rate` where periods are adjacent."""
    sid, period = frame["series_id"].to_numpy(), frame[column].to_numpy()
    level = frame["level"].to_numpy(dtype=np.float64)
    value = frame["value"].to_numpy(dtype=np.float64)
    change = np.full(len(frame), np.nan)
    rate = np.full(len(frame), np.nan)
    if len(frame) > 1:
        adjacent = (sid[1:] == sid[:-1]) & (period[1:] - period[:-1] == step)
        change[1:] = np.where(adjacent, level[1:] - level[:-1], np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate[1:] = np.where(adjacent & (value[:-1] > 0), change[1:] / value[:-1], np.nan)
    return frame.assign(change=change, rate=rate)


def period_sums(frame: pd.DataFrame, period: str) -> pd.DataFrame:
    """Per-period series (`day` or `week` values) summed into ISO weeks.

    Columns: series_id, week (Monday's day number), value (the sum), periods (how many
    days or weekly buckets it holds), complete (7 days, or the one weekly bucket).
    Per-period values are summed, never differenced.
    """
    sid = frame["series_id"].to_numpy()
    day = day_of(frame["t"].to_numpy())
    week = week_of(day)
    last = last_per_group([sid, week])
    group = np.cumsum(np.r_[True, last[:-1]]) - 1 if len(sid) else np.array([], int)
    size = int(last.sum())
    total = np.bincount(group, weights=frame["value"].to_numpy(dtype=np.float64), minlength=size)
    periods = np.bincount(group, minlength=size)
    needed = 7 if period == "day" else 1
    return pd.DataFrame(
        {
            "series_id": sid[last],
            "week": monday_of(week[last]),
            "value": total.astype(np.int64),
            "periods": periods,
            "complete": periods >= needed,
        }
    )
