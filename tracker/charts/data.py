"""The frames the charts draw, shaped from an `Analysis`, and the words about them.

A chart line is one source's view of one platform: sources are never added
together, because each tracker counts a different thing. A network line is the
source's daily total (with its coverage), the very total `summary.json` reports
and the waves are found in. Where that total is an aggregate target's own series
(a Bluesky relay: `tracker.analysis.totals.network_parts`), the line is labelled
with that target, and the target's flags are drawn on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tracker.analysis.conventions import day_date, day_of
from tracker.analysis.pipeline import Analysis
from tracker.analysis.quality import JUMPS
from tracker.catalogue import facts_of, platform_name, source_order

LINE_COLUMNS = ["source", "platform", "metric", "target", "day", "value", "stale", "reporting"]
"""A tidy line frame: one row per line and day. `target` is '' for a network total summed
over targets, or the aggregate target (a relay) whose own series the total is."""


def ordered_sources(frame: pd.DataFrame, time: str = "day") -> list[str]:
    """Sources of a frame: collected ones in the registry's order, then imported ones by
    their first date (history reads left to right)."""
    first = frame.groupby("source")[time].min()
    collected = source_order()

    def rank(source: str) -> tuple[int, float, str]:
        if source in collected:
            return (collected.index(source), 0.0, source)
        return (len(collected), float(first[source]), source)

    return sorted((str(source) for source in first.index), key=rank)


def describe(source: str, *, brief: bool = False) -> str:
    """The source's name and what it counts: its owner's caption, or brief words in titles."""
    facts = facts_of(source)
    note = None if facts is None else facts.brief if brief else facts.caption
    return f"{source} ({note})" if note else source


def iso(day: int) -> str:
    return day_date(int(day)).isoformat()


def targets_of(analysis: Analysis, source: str, platform: str, metric: str) -> list[str]:
    meta = analysis.series
    if meta.empty:
        return []
    chosen = meta[
        (meta["source"] == source) & (meta["platform"] == platform) & (meta["metric"] == metric)
    ]
    # Servers of a spam cluster are no target of the total: "45 of 45", not "45 of 50".
    chosen = chosen[~chosen.index.isin(list(analysis.clustered))]
    return sorted(str(target) for target in chosen["target"].unique())


def network_lines(analysis: Analysis, metrics: Iterable[str]) -> pd.DataFrame:
    """Daily network lines of point-in-time metrics (see the module docstring)."""
    totals = analysis.totals
    if totals.empty:
        return pd.DataFrame(columns=LINE_COLUMNS)
    chosen = totals[totals["metric"].isin(list(metrics))]
    lines = chosen.assign(
        target=_network_targets(analysis, chosen), value=chosen["value"].astype(np.float64)
    )
    return _stacked([lines[LINE_COLUMNS]], LINE_COLUMNS, "day")


def _network_targets(analysis: Analysis, totals: pd.DataFrame) -> list[str]:
    """Per row of a totals frame: the aggregate target the total is, or '' for a sum."""
    keys = zip(totals["source"], totals["platform"], totals["metric"], strict=True)
    return [analysis.network_targets.get((str(a), str(b), str(c)), "") for a, b, c in keys]


def line_series(analysis: Analysis, lines: pd.DataFrame) -> pd.Index:
    """Series ids whose points a line shows one to one: the line's own aggregate target,
    or the only target of its source and platform (so its flags belong on the line)."""
    meta = analysis.series
    if meta.empty or lines.empty:
        return pd.Index([], dtype=np.int64)
    chosen: list[int] = []
    for (source, platform, metric, target), _ in lines.groupby(
        ["source", "platform", "metric", "target"], sort=False
    ):
        match = meta[
            (meta["source"] == source)
            & (meta["platform"] == platform)
            & (meta["metric"] == metric)
            & (meta["period"] == "")
        ]
        if target:
            match = match[match["target"] == target]
        if len(match) == 1:
            chosen.append(int(match.index[0]))
    return pd.Index(chosen, dtype=np.int64)


@dataclass(frozen=True)
class Coverage:
    """How much of a line's network reported, for captions."""

    last_day: int
    reporting: int
    targets: int
    stale_days: int
    days: int

    def text(self, unit: str = "targets") -> str:
        if self.targets <= 1:
            parts = [f"last reading {iso(self.last_day)}"]
            stale = "without a reading (the day before carried forward)"
        else:
            parts = [
                f"{self.reporting:,} of {self.targets:,} {unit} reported on {iso(self.last_day)}"
            ]
            stale = "stale (missing servers' last values carried forward)"
        if self.stale_days:
            parts.append(f"{self.stale_days:,} of {self.days:,} days {stale}")
        return "; ".join(parts)


def coverage(analysis: Analysis, lines: pd.DataFrame) -> dict[tuple[str, str, str, str], Coverage]:
    """Coverage of each line: on its last day, and stale days over its whole span."""
    result: dict[tuple[str, str, str, str], Coverage] = {}
    for key, frame in lines.groupby(["source", "platform", "metric", "target"], sort=False):
        source, platform, metric, target = (str(part) for part in key)
        last = frame.iloc[int(frame["day"].to_numpy().argmax())]
        targets = 1 if target else len(targets_of(analysis, source, platform, metric))
        result[(source, platform, metric, target)] = Coverage(
            last_day=int(last["day"]),
            reporting=int(last["reporting"]),
            targets=max(targets, int(last["reporting"])),
            stale_days=int(frame["stale"].sum()),
            days=len(frame),
        )
    return result


def unit_of(source: str) -> str:
    facts = facts_of(source)
    return "targets" if facts is None else facts.unit


def line_label(source: str, platform: str, target: str, *, with_source: bool) -> str:
    name = platform_name(platform)
    if target and target != source:
        name = f"{name} ({target})"
    return f"{name} · {source}" if with_source else name


def by_source(notes: Mapping[str, Sequence[str]]) -> str:
    """Caption text naming each source once: 'a (what a is): x; y. b (...): z.'"""
    return " ".join(
        f"{describe(source)}: {'; '.join(items)}." for source, items in notes.items() if items
    )


def span_text(analysis: Analysis) -> str:
    if analysis.first_day is None or analysis.last_day is None:
        return "no observations yet"
    if analysis.first_day == analysis.last_day:
        return f"a single day so far, {iso(analysis.first_day)} (UTC): trends need more days"
    return f"{iso(analysis.first_day)} to {iso(analysis.last_day)} (UTC days)"


WEEKLY_COLUMNS = ["source", "platform", "metric", "target", "week", "value", "change", "stale"]


def weekly_lines(analysis: Analysis, metrics: Iterable[str]) -> pd.DataFrame:
    """Weekly network lines (`WEEKLY_COLUMNS`): the coverage-neutral weekly change of
    each source's total (see `network_lines`), the one its waves are found in."""
    totals = analysis.weekly_totals
    if totals.empty:
        return pd.DataFrame(columns=WEEKLY_COLUMNS)
    chosen = totals[totals["metric"].isin(list(metrics))]
    lines = chosen.assign(
        target=_network_targets(analysis, chosen),
        value=chosen["value"].astype(np.float64),
        change=chosen["change"].astype(np.float64),
    )
    return _stacked([lines[WEEKLY_COLUMNS]], WEEKLY_COLUMNS, "week")


def _stacked(parts: list[pd.DataFrame], columns: list[str], time: str) -> pd.DataFrame:
    """The chart lines of all parts in one frame, in the order they are drawn and listed."""
    parts = [part for part in parts if not part.empty]
    if not parts:
        return pd.DataFrame(columns=columns)
    lines = pd.concat(parts, ignore_index=True)
    lines["stale"] = lines["stale"].astype(bool)
    return lines.sort_values(["source", "platform", "metric", "target", time]).reset_index(
        drop=True
    )


def outlier_points(analysis: Analysis, ids: pd.Index) -> pd.DataFrame:
    """Excluded readings (dropouts, spikes) of the given series: day, value."""
    outliers = analysis.outliers
    if outliers.empty or ids.empty:
        return pd.DataFrame(columns=["day", "value"])
    chosen = outliers[outliers["series_id"].isin(ids)]
    return pd.DataFrame(
        {"day": day_of(chosen["t"].to_numpy()), "value": chosen["value"].to_numpy()}
    )


def flag_points(analysis: Analysis, ids: pd.Index) -> pd.DataFrame:
    """Steps and decreases of the given series at their value that day: day, value, kind."""
    flags = analysis.stats.flags
    if flags.empty or ids.empty or analysis.daily.empty:
        return pd.DataFrame(columns=["day", "value", "kind"])
    chosen = flags[flags["series_id"].isin(ids) & flags["kind"].isin(JUMPS)]
    daily = analysis.daily[analysis.daily["series_id"].isin(ids)][["series_id", "day", "value"]]
    placed = chosen.merge(daily, on=["series_id", "day"], how="inner")
    return placed[["day", "value", "kind"]].astype({"value": np.float64})
