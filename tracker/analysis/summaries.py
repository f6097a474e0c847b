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
    """One row per flagged day, with a sentence saying what happened (vectorised: a big
    database has tens of thousands of flags)."""
    parts = []
    same = daily["series_id"].eq(daily["series_id"].shift(1)).to_numpy()
    earlier = np.where(same, daily["value"].shift(1).to_numpy(dtype=np.float64), np.nan)
    marked = daily["flag"].isin([STEP, DECREASE]).to_numpy()
    if marked.any():
        rows = daily.loc[marked]
        details = [
            f"level shift of {jump:+,.0f}: not counted as growth"
            if kind == STEP
            else f"fell by {before - value:,.0f} to {value:,}: a counter that should not fall; "
            "growth is measured on its running maximum"
            for kind, jump, value, before in zip(
                rows["flag"].astype(str), rows["jump"], rows["value"], earlier[marked], strict=True
            )
        ]
        parts.append(
            pd.DataFrame(
                {
                    "series_id": rows["series_id"].to_numpy(),
                    "day": rows["day"].to_numpy(),
                    "kind": rows["flag"].astype(str).to_numpy(),
                    "detail": details,
                }
            )
        )
    if not outliers.empty:
        frame = outliers.assign(
            day=day_of(outliers["t"].to_numpy()), kind=outliers["flag"].astype(str)
        )
        days = (
            frame[frame["kind"].isin([DROPOUT, SPIKE])]
            .groupby(["series_id", "day", "kind"], as_index=False, sort=True)
            .agg(value=("value", "first"), readings=("value", "size"))
        )
        details = [
            f"{value:,}{f' and {count - 1} more' if count > 1 else ''} far "
            f"{'below' if kind == DROPOUT else 'above'} the readings around it: not used"
            for value, count, kind in zip(
                days["value"], days["readings"], days["kind"], strict=True
            )
        ]
        parts.append(days[["series_id", "day", "kind"]].assign(detail=details))
    if not parts:
        return pd.DataFrame(columns=["series_id", "day", "kind", "detail"])
    return (
        pd.concat(parts, ignore_index=True).sort_values(["series_id", "day"]).reset_index(drop=True)
    )
