"""Data-quality flags on raw observations, so that artefacts are never reported as growth.

Real trackers drop a big server from one crawl, re-index and jump by a million,
or count a server twice for an hour. Each point of a series may get one flag:

- `dropout`: a run of at most `max_run` points more than `dropout_share` (and
  `dropout_min` units) *below* both the point before and the point after the run:
  the series recovers, so the points are wrong. They are not used as daily values
  and are drawn as distinct markers.
- `spike`: the same, *above* both neighbours (a server lying once).
- `step` (cumulative counters only): a change at least `step_factor` times the
  typical change (the median absolute change of the `step_window` points before,
  and of those after), at least `step_share` of the level and `step_min` units, that
  does not revert within the next three points. A re-index, not growth: the level
  after it is kept, the jump is excluded from every growth figure. A real migration
  wave has large changes after it as well, so it is not a step.
  Near either end of a series (fewer than `step_window` readings before or after
  it) a step is judged on the readings there are: the typical change is taken over
  the neighbours that exist (at least `edge_evidence` changes on the two sides
  together, else nothing is judged), and the new level must hold for the readings
  that follow, up to three, or to the end. So a re-index among the first or last
  readings is flagged rather than becoming the largest weekly gain or a wave; one on
  the very last reading holds "to the end" and is flagged until later readings
  show whether it was growth (the next report judges it again).
- `decrease` (cumulative counters only): a fall of more than `decrease_share` of the
  level (and `decrease_min`) that is neither a dropout nor a step: counts of accounts
  and posts do not shrink, trackers losing servers do. Growth of a cumulative
  counter is measured on its running maximum (see `series.adjusted`), so a fall
  counts as no growth and the recovery up to the old maximum counts as none either.

`stale` (carried-forward values in network totals) is set by `totals`, not here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

Bools = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]

DROPOUT, SPIKE, STEP, DECREASE, STALE = "dropout", "spike", "step", "decrease", "stale"
KINDS = ["", DROPOUT, SPIKE, STEP, DECREASE]
"""Flag codes (one byte a point): the position in this list."""
FLAG_TYPE = pd.CategoricalDtype(KINDS)


def flag_column(codes: npt.NDArray[np.int8]) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, dtype=FLAG_TYPE)


NONE_CODE, DROPOUT_CODE, SPIKE_CODE, STEP_CODE, DECREASE_CODE = range(5)
OUTLIERS = (DROPOUT, SPIKE)
JUMPS = (STEP, DECREASE)


@dataclass(frozen=True)
class QualityRules:
    dropout_share: float = 0.05
    dropout_min: float = 10
    max_run: int = 7
    step_factor: float = 10.0
    step_share: float = 0.01
    step_min: float = 100
    step_window: int = 7
    edge_evidence: int = 3
    decrease_share: float = 0.01
    decrease_min: float = 1


def flag_points(
    frame: pd.DataFrame, cumulative: Bools, rules: QualityRules = QualityRules()
) -> pd.DataFrame:
    """`frame` (series_id, t, value; sorted by series, time) with `flag` and `jump` added.

    `cumulative[i]` says whether row i belongs to a cumulative counter. `jump` is the
    change a step brings (excluded from growth), else 0.
    """
    sid = frame["series_id"].to_numpy()
    values = frame["value"].to_numpy(dtype=np.float64)
    codes = np.zeros(len(frame), dtype=np.int8)
    jumps = np.zeros(len(frame))
    outlier = _outliers(sid, values, cumulative, rules, codes)
    kept = np.flatnonzero(~outlier)
    step, decrease, jump = _jumps(sid[kept], values[kept], cumulative[kept], rules)
    codes[kept[step]] = STEP_CODE
    codes[kept[decrease]] = DECREASE_CODE
    jumps[kept] = jump
    return frame.assign(flag=flag_column(codes), jump=jumps)


def _outliers(
    sid: npt.NDArray[np.int64],
    values: Floats,
    cumulative: Bools,
    rules: QualityRules,
    codes: npt.NDArray[np.int8],
) -> Bools:
    """Mark dropout and spike runs in `codes`; return which points are outliers.

    A run can only start with a fall (or rise) of `dropout_share` from the point
    before it, so only those points are examined: a few in a thousand on real data.
    """
    count = len(values)
    outlier = np.zeros(count, dtype=bool)
    if count < 3:
        return outlier
    previous = np.r_[np.nan, values[:-1]]
    same = np.r_[False, sid[1:] == sid[:-1]]
    gap = np.abs(values - previous)
    entry_fall = same & (values < previous * (1 - rules.dropout_share))
    entry_rise = same & (values > previous * (1 + rules.dropout_share))
    starts = np.flatnonzero((entry_fall | entry_rise) & (gap >= rules.dropout_min))
    high = values[starts].copy()
    low = values[starts].copy()
    before = values[starts - 1]
    for length in range(1, rules.max_run + 1):
        if starts.size == 0:
            break
        if length > 1:
            inside = np.minimum(starts + length - 1, count - 1)
            high = np.maximum(high, values[inside])
            low = np.minimum(low, values[inside])
        after_index = starts + length
        exists = after_index < count
        after_index = np.minimum(after_index, count - 1)
        ok = exists & (sid[after_index] == sid[starts]) & ~outlier[after_index]
        ok &= ~outlier[starts - 1]
        after = values[after_index]
        floor, ceiling = np.minimum(before, after), np.maximum(before, after)
        dropped = ok & (high < floor * (1 - rules.dropout_share))
        dropped &= floor - high >= rules.dropout_min
        spiked = ok & (low > ceiling * (1 + rules.dropout_share))
        spiked &= low - ceiling >= rules.dropout_min
        for found, code in ((dropped, DROPOUT_CODE), (spiked, SPIKE_CODE)):
            for offset in range(length):
                index = starts[found] + offset
                codes[index] = code
                outlier[index] = True
        keep = ~(dropped | spiked)
        starts, high, low, before = starts[keep], high[keep], low[keep], before[keep]
    return outlier


def _jumps(
    sid: npt.NDArray[np.int64], values: Floats, cumulative: Bools, rules: QualityRules
) -> tuple[Bools, Bools, Floats]:
    """Steps and decreases among the points that are not outliers, and each step's jump.

    A rise only counts as a step by what it adds above the recent maximum (the
    `step_window` points before): climbing back after a fall is a recovery, not a
    re-index, and the running maximum already keeps it out of growth. Only changes
    of at least `step_share` of the level are examined, so the window medians are
    computed for a few points, not for millions. Near the ends of a series the
    windows hold only the points there are (see the module docstring).
    """
    count = len(values)
    step = np.zeros(count, dtype=bool)
    jump = np.zeros(count)
    previous = np.r_[np.nan, values[:-1]]
    continuing = np.r_[False, sid[1:] == sid[:-1]] if count else np.zeros(0, bool)
    change = np.where(continuing, values - previous, np.nan)
    falls = np.abs(change) > np.fmax(rules.decrease_share * np.abs(previous), rules.decrease_min)
    threshold = np.fmax(rules.step_share * np.abs(previous), rules.step_min)
    window = rules.step_window
    position, remaining = _position_in_series(sid), _remaining_in_series(sid)
    changes_before = np.clip(position - 1, 0, window)  # the first point has no change
    changes_after = np.minimum(remaining, window)
    room = continuing & (changes_before + changes_after >= rules.edge_evidence)
    candidates = np.flatnonzero(cumulative & room & (np.abs(change) >= threshold))
    if candidates.size:
        offsets = np.arange(1, window + 1)
        magnitude = np.abs(np.nan_to_num(change))
        before = offsets <= changes_before[candidates][:, None]
        after = offsets <= changes_after[candidates][:, None]
        typical_before = _window_median(magnitude, candidates[:, None] - offsets, before)
        typical_after = _window_median(magnitude, candidates[:, None] + offsets, after)
        typical = np.fmax(np.fmax(typical_before, typical_after), 1.0)
        earlier = offsets <= position[candidates][:, None]
        recent = np.where(earlier, values[np.maximum(candidates[:, None] - offsets, 0)], -np.inf)
        recent_max = recent.max(axis=1)
        rising = change[candidates] > 0
        size = np.where(
            rising,
            np.fmax(values[candidates] - np.fmax(recent_max, previous[candidates]), 0.0),
            change[candidates],
        )
        big = np.abs(size) > rules.step_factor * typical
        big &= np.abs(size) >= threshold[candidates]
        held = _holds(values, sid, candidates, change[candidates], previous[candidates])
        chosen = candidates[big & held]
        step[chosen] = True
        jump[chosen] = size[big & held]
    decrease = cumulative & continuing & ~step & (change < 0) & falls
    return step, decrease, jump


def _window_median(magnitude: Floats, index: npt.NDArray[np.int64], usable: Bools) -> Floats:
    """Per row, the median of `magnitude` at the usable indexes; NaN where none is."""
    taken = magnitude[np.clip(index, 0, len(magnitude) - 1)]
    median = np.full(len(index), np.nan)
    some = usable.any(axis=1)
    if some.any():
        median[some] = np.nanmedian(np.where(usable, taken, np.nan)[some], axis=1)
    return median


def _holds(
    values: Floats,
    sid: npt.NDArray[np.int64],
    at: npt.NDArray[np.int64],
    change: Floats,
    previous: Floats,
) -> Bools:
    """The new level holds for the next three points, or to the end of the series when
    fewer follow (at least half the jump remains)."""
    count = len(values)
    halfway = previous + change / 2
    holds = np.ones(len(at), dtype=bool)
    for ahead in range(1, 4):
        index = at + ahead
        inside = index < count
        index = np.minimum(index, count - 1)
        same = inside & (sid[index] == sid[at])
        later = values[index]
        kept_up = np.where(change > 0, later >= halfway, later <= halfway)
        holds &= ~same | kept_up
    return holds


def _position_in_series(sid: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    if len(sid) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(sid[1:] != sid[:-1]) + 1]
    lengths = np.diff(np.r_[starts, len(sid)])
    position: npt.NDArray[np.int64] = np.arange(len(sid)) - np.repeat(starts, lengths)
    return position


def _remaining_in_series(sid: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    reversed_position: npt.NDArray[np.int64] = _position_in_series(sid[::-1])[::-1]
    return reversed_position
