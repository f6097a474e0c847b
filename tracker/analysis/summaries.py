"""Per-series figures for `summary.json`: first, last, peak, largest weekly gain, flags.

Computed for every series at once with group-wise reductions, so a database of
thousands of targets is summarised in one pass, chunk by chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tracker.analysis.conventions import day_of
from tracker.analysis.quality import DECREASE, DROPOUT, SPIKE, STEP

STAT_COLUMNS = [
    "first_day",
    "first_value",
    "last_day",
    "last_value",
    "peak_day",
    "peak_value",
    "best_week",
    "best_week_change",
]


@dataclass
class SeriesStats:
    """`table`: one row per series (index series_id, STAT_COLUMNS); `flags`: one row per
    flagged day (series_id, day, kind, detail)."""

    table: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=STAT_COLUMNS))
    flags: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["series_id", "day", "kind", "detail"])
    )

    @staticmethod
    def combine(parts: list[SeriesStats]) -> SeriesStats:
        tables = [part.table for part in parts if not part.table.empty]
        flags = [part.flags for part in parts if not part.flags.empty]
        result = SeriesStats()
        if tables:
            result.table = pd.concat(tables).sort_index()
        if flags:
            result.flags = pd.concat(flags, ignore_index=True)
        return result


def series_stats(daily: pd.DataFrame, weekly: pd.DataFrame, outliers: pd.DataFrame) -> SeriesStats:
    """Figures of point-in-time series from their daily and weekly values.

    The largest weekly gain uses the adjusted weekly change (steps excluded, falls of
    cumulative counters measured on the running maximum).
    """
    if daily.empty:
        return SeriesStats()
    grouped = daily.groupby("series_id", sort=True)
    first = grouped.head(1).set_index("series_id")
    last = grouped.tail(1).set_index("series_id")
    peak = daily.loc[grouped["value"].idxmax()].set_index("series_id")
    table = pd.DataFrame(
        {
            "first_day": first["day"],
            "first_value": first["value"],
            "last_day": last["day"],
            "last_value": last["value"],
            "peak_day": peak["day"],
            "peak_value": peak["value"],
        }
    )
    gains = weekly.dropna(subset=["change"])
    if not gains.empty:
        best = gains.loc[gains.groupby("series_id")["change"].idxmax()].set_index("series_id")
        table["best_week"] = best["week"]
        table["best_week_change"] = best["change"]
    else:
        table["best_week"] = np.nan
        table["best_week_change"] = np.nan
    return SeriesStats(table[STAT_COLUMNS], _flags(daily, outliers))


def _flags(daily: pd.DataFrame, outliers: pd.DataFrame) -> pd.DataFrame:
    rows: list[dict[str, object]] = []
    previous = daily["value"].shift(1)
    same = daily["series_id"].eq(daily["series_id"].shift(1))
    marked = daily[daily["flag"].isin([STEP, DECREASE])]
    earlier = previous.where(same).to_numpy(dtype=np.float64)
    positions = np.flatnonzero(daily["flag"].isin([STEP, DECREASE]).to_numpy())
    for position, (_, row) in zip(positions, marked.iterrows(), strict=True):
        if row["flag"] == STEP:
            detail = f"level shift of {row['jump']:+,.0f}: not counted as growth"
        else:
            fall = earlier[position] - float(row["value"])
            detail = (
                f"fell by {fall:,.0f} to {row['value']:,}: a counter that should not fall; "
                "growth is measured on its running maximum"
            )
        rows.append(
            {
                "series_id": row["series_id"],
                "day": int(row["day"]),
                "kind": row["flag"],
                "detail": detail,
            }
        )
    for (series_id, day, kind), group in _outlier_days(outliers):
        values = ", ".join(f"{value:,}" for value in group["value"].head(3))
        where = "below" if kind == DROPOUT else "above"
        detail = f"{values} far {where} the readings around it: not used"
        rows.append({"series_id": series_id, "day": day, "kind": kind, "detail": detail})
    if not rows:
        return pd.DataFrame(columns=["series_id", "day", "kind", "detail"])
    return pd.DataFrame(rows).sort_values(["series_id", "day"]).reset_index(drop=True)


def _outlier_days(outliers: pd.DataFrame) -> list[tuple[tuple[int, int, str], pd.DataFrame]]:
    if outliers.empty:
        return []
    frame = outliers.assign(day=day_of(outliers["t"].to_numpy()), kind=outliers["flag"].astype(str))
    frame = frame[frame["kind"].isin([DROPOUT, SPIKE])]
    result = []
    for key, group in frame.groupby(["series_id", "day", "kind"], sort=True):
        series_id, day, kind = (str(part) for part in key)
        result.append(((int(series_id), int(day), kind), group))
    return result
