"""`summary.json`: the report's figures as a contract scripts read.

```json
{"headline": {"text": ["Mastodon gained ..."], "events": [...]},
 "generated_at": "2026-01-01T00:00:00Z",
 "series": [{"source", "platform", "target", "metric", "first": {"date", "value"},
             "last": {...}, "peak": {...}, "largest_weekly_gain": {"week", "value"},
             "flags": [{"date", "kind", "detail"}]}],
 "events": [{"date", "label", "effects": [{"source", "target", "metric", "excess", "ratio"}]}]}
```

One `series` entry per (source, target, metric) of a point-in-time metric, and one per
(source, platform, metric) network total with target `*` and its `coverage`; a total
that is an aggregate target's own series (a relay: `tracker.analysis.totals.network_parts`)
names it in `network_target`, and its effects are listed even though it has one target
(the relay's own may not be, in a source of thousands of hosts). Dates are
`YYYY-MM-DD`; a figure that cannot be computed is `null`. Extra keys (`range`,
`empty`, `waves`, `per_period`, `coverage`, `network_target`, `network`, and `headline`,
first: the answer the page opens with, `tracker.report.headline`) add to the contract,
never change it.
The crawl's network view is the top-level `network` object
(`tracker.report.network_summary`); the crawl's own counts of servers (source
`crawl`, one target per family) are ordinary series here.
Event effects are listed for network totals, for the series of sources with at most
`MAX_TARGETS_FOR_EFFECTS` targets (so one source with thousands of servers does not
drown the list) and for per-period series of such sources (page views).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from tracker.analysis.conventions import day_date, day_number
from tracker.analysis.events import Wave, flow_effect, level_effect, spread_weeks, waves
from tracker.analysis.pipeline import Analysis
from tracker.analysis.series import adjusted
from tracker.analysis.totals import GROUP
from tracker.config import AnalysisSettings
from tracker.instants import iso_z
from tracker.model import Event
from tracker.report.headline import headline_entry
from tracker.report.network_summary import network_entry

MAX_TARGETS_FOR_EFFECTS = 50
Waves = dict[tuple[str, str, str], list[Wave]]


def _date(day: Any) -> str | None:
    if day is None or (isinstance(day, float) and math.isnan(day)):
        return None
    return day_date(int(day)).isoformat()


def _point(day: Any, value: Any) -> dict[str, Any] | None:
    text = _date(day)
    if text is None or value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return {"date": text, "value": round(float(value))}


def _week(week: Any, value: Any) -> dict[str, Any] | None:
    point = _point(week, value)
    return None if point is None else {"week": point["date"], "value": point["value"]}


def total_waves(analysis: Analysis, settings: AnalysisSettings) -> Waves:
    """Waves of every network total's weekly change (stale weeks ignored)."""
    found: Waves = {}
    if analysis.weekly_totals.empty:
        return found
    for key, group in analysis.weekly_totals.groupby(GROUP, sort=True):
        found[(str(key[0]), str(key[1]), str(key[2]))] = waves(
            group["week"].to_numpy(dtype=np.int64),
            group["change"].to_numpy(dtype=np.float64),
            k=settings.wave_factor,
            trailing=settings.wave_trailing_weeks,
            ignore=group["stale"].to_numpy(dtype=bool),
            levels=group["value"].to_numpy(dtype=np.float64),
        )
    return found


def _wave_list(found: Sequence[Wave]) -> list[dict[str, Any]]:
    return [
        {
            "start": _date(wave.start),
            "end": _date(wave.end),
            "peak_week": _date(wave.peak_week),
            "peak_value": round(wave.peak_change),
        }
        for wave in found
    ]


def _row_of_max(frame: pd.DataFrame, column: str) -> pd.Series:
    """The first row holding the column's maximum."""
    return frame.iloc[int(np.nanargmax(frame[column].to_numpy(dtype=np.float64)))]


def series_entries(analysis: Analysis) -> list[dict[str, Any]]:
    stats = analysis.stats.table
    if stats.empty:
        return []
    named = stats.join(analysis.series).sort_values(["source", "target", "metric"])
    flags: dict[int, list[dict[str, Any]]] = {}
    table = analysis.stats.flags
    for series_id, day, kind, detail in zip(
        table["series_id"], table["day"], table["kind"], table["detail"], strict=True
    ):
        flags.setdefault(int(series_id), []).append(
            {"date": _date(day), "kind": kind, "detail": detail}
        )
    return [
        {
            "source": row.source,
            "platform": row.platform,
            "target": row.target,
            "metric": row.metric,
            "first": _point(row.first_day, row.first_value),
            "last": _point(row.last_day, row.last_value),
            "peak": _point(row.peak_day, row.peak_value),
            "largest_weekly_gain": _week(row.best_week, row.best_week_change),
            "flags": flags.get(int(str(row.Index)), []),
        }
        for row in named.itertuples()
    ]


def total_entries(analysis: Analysis, found: Waves) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    if analysis.totals.empty:
        return entries
    weekly = dict(iter(analysis.weekly_totals.groupby(GROUP, sort=False)))
    for key, group in analysis.totals.groupby(GROUP, sort=True):
        source, platform, metric = (str(part) for part in key)
        first, last = group.iloc[0], group.iloc[-1]
        peak = _row_of_max(group, "value")
        weeks = weekly.get(key)
        gain = None
        if weeks is not None:
            usable = weeks[~weeks["stale"] & weeks["change"].notna()]
            if not usable.empty:
                best = _row_of_max(usable, "change")
                gain = _week(best["week"], best["change"])
        entries.append(
            {
                "source": source,
                "platform": platform,
                "target": "*",
                "metric": metric,
                "first": _point(first["day"], first["value"]),
                "last": _point(last["day"], last["value"]),
                "peak": _point(peak["day"], peak["value"]),
                "largest_weekly_gain": gain,
                "flags": _stale_runs(group),
                "coverage": {
                    "targets": int((group["reporting"] + group["carried"]).max()),
                    "reporting_last_day": int(last["reporting"]),
                    "carried_last_day": int(last["carried"]),
                    "stale_days": int(group["stale"].sum()),
                },
                "waves": _wave_list(found.get((source, platform, metric), [])),
            }
        )
        network_target = analysis.network_targets.get((source, platform, metric))
        if network_target is not None:
            entries[-1]["network_target"] = network_target
    return entries


def _stale_runs(group: pd.DataFrame) -> list[dict[str, Any]]:
    """One flag per run of consecutive stale days (carried values over 1% of the total)."""
    days = group.loc[group["stale"], "day"].to_numpy(dtype=np.int64)
    if days.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(days) != 1)
    starts, ends = np.r_[days[0], days[breaks + 1]], np.r_[days[breaks], days[-1]]
    flags = []
    for start, end in zip(starts, ends, strict=True):
        count = int(end - start + 1)
        detail = (
            f"{count} day{'s' if count > 1 else ''} with carried-forward values (targets missing)"
        )
        flags.append({"date": _date(start), "kind": "stale", "detail": detail})
    return flags


def period_entries(analysis: Analysis) -> list[dict[str, Any]]:
    """Per-period series (page views, tagged posts, weekly sign-ups), summed by ISO week."""
    weekly = analysis.period_weekly
    if weekly.empty:
        return []
    entries = []
    named = weekly.join(analysis.series, on="series_id")
    for (source, platform, target, metric, period), group in named.groupby(
        ["source", "platform", "target", "metric", "period"], sort=True
    ):
        complete = group[group["complete"]]
        peak = _row_of_max(complete, "value") if not complete.empty else None
        entries.append(
            {
                "source": source,
                "platform": platform,
                "target": target,
                "metric": metric,
                "period": period,
                "first_week": _date(group["week"].min()),
                "last_week": _date(group["week"].max()),
                "peak_week": None if peak is None else _week(peak["week"], peak["value"]),
                "total": int(group["value"].sum()),
            }
        )
    return entries


def event_entries(
    analysis: Analysis, events: Sequence[Event], settings: AnalysisSettings
) -> list[dict[str, Any]]:
    before, after = settings.event_window_before, settings.event_window_after
    candidates = list(_effect_series(analysis))
    result = []
    for event in events:
        day = day_number(event.date)
        effects = []
        for source, target, metric, kind, days, values in candidates:
            compute = level_effect if kind == "level" else flow_effect
            effect = compute(days, values, day, before, after)
            if effect is None:
                continue
            effects.append(
                {
                    "source": source,
                    "target": target,
                    "metric": metric,
                    "excess": round(effect.excess),
                    "ratio": None if effect.ratio is None else round(effect.ratio, 3),
                    "observed": round(effect.observed),
                    "expected": round(effect.expected),
                }
            )
        result.append({"date": event.date.isoformat(), "label": event.label, "effects": effects})
    return result


def _effect_series(analysis: Analysis) -> Any:
    """(source, target, metric, kind, days, values) for every series effects are measured on."""
    meta = analysis.series
    small = meta.groupby("source")["target"].nunique()
    small_sources = set(small[small <= MAX_TARGETS_FOR_EFFECTS].index)
    if not analysis.totals.empty:
        for key, group in analysis.totals.groupby(GROUP, sort=True):
            names = (str(key[0]), str(key[1]), str(key[2]))
            alone = int((group["reporting"] + group["carried"]).max()) <= 1
            if alone and names not in analysis.network_targets:
                continue  # a one-target total repeats that target's own effect
            level = group["change"].fillna(0).cumsum().to_numpy(dtype=np.float64)
            yield str(key[0]), "*", str(key[2]), "level", group["day"].to_numpy(np.int64), level
    if not analysis.daily.empty:
        for series_id, group in analysis.daily.groupby("series_id", sort=True):
            row = meta.loc[series_id]
            if row["source"] in small_sources:
                days = group["day"].to_numpy(dtype=np.int64)
                yield row["source"], row["target"], row["metric"], "level", days, adjusted(group)
    if not analysis.period_daily.empty:
        for series_id, group in analysis.period_daily.groupby("series_id", sort=True):
            row = meta.loc[series_id]
            if row["source"] not in small_sources:
                continue
            days = group["day"].to_numpy(dtype=np.int64)
            values = group["value"].to_numpy(dtype=np.float64)
            if row["period"] == "week":
                days, values = spread_weeks(days, values)
            yield row["source"], row["target"], row["metric"], "flow", days, values


def build_summary(
    analysis: Analysis,
    events: Sequence[Event],
    settings: AnalysisSettings,
    generated_at: datetime,
    since: Any = None,
    until: Any = None,
) -> dict[str, Any]:
    found = total_waves(analysis, settings)
    return {
        "headline": headline_entry(analysis, events, settings),
        "generated_at": iso_z(generated_at),
        "empty": analysis.empty,
        "range": {
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "first_day": _date(analysis.first_day),
            "last_day": _date(analysis.last_day),
        },
        "series": series_entries(analysis) + total_entries(analysis, found),
        "per_period": period_entries(analysis),
        "events": event_entries(analysis, events, settings),
        "network": network_entry(analysis),
    }
