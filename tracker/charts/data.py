"""The frames the charts draw, shaped from an `Analysis`, and the words about them.

A chart line is one source's view of one platform: sources are never added
together, because each tracker counts a different thing. A network line is the
source's daily total (with its coverage) except where the source has an
aggregate target of its own: a Bluesky relay's `users_total` already sums every
host it lists, and the per-host readings of the same source must not be added
to it again, so that line is the aggregate target's own series.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tracker.analysis.conventions import day_date
from tracker.analysis.pipeline import Analysis

LINE_COLUMNS = ["source", "platform", "metric", "target", "day", "value", "stale", "reporting"]
"""A tidy line frame: one row per line and day. `target` is '' for a network total."""

AGGREGATE_METRIC = "servers_total"
"""A target that also counts servers speaks for a whole network (a relay, a tracker)."""

SOURCE_NOTES = {
    "joinmastodon": "official statistics of joinmastodon.org",
    "fediverse": "servers listed in the config, read from their public APIs",
    "bluesky": "Bluesky relays and PDS hosts listed in the config",
    "tumblr": "Tumblr API",
    "wikipedia": "Wikimedia page views API",
    "mastodonusercount": "imported crawl of the @mastodonusercount bot",
    "instances_social": "imported instances.social totals",
    "bsky_users": "imported bsky-users tracker",
}
SOURCE_ORDER = ("joinmastodon", "fediverse", "bluesky", "tumblr", "wikipedia")
"""Collected sources first, in this order; imported ones after them, by name."""


def source_rank(source: str) -> tuple[int, str]:
    return (SOURCE_ORDER.index(source), "") if source in SOURCE_ORDER else (99, source)


def describe(source: str) -> str:
    note = SOURCE_NOTES.get(source)
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
    return sorted(str(target) for target in chosen["target"].unique())


def aggregates(analysis: Analysis) -> pd.DataFrame:
    """Series of targets that speak for a whole network, in sources with other targets.

    Index series_id; columns of `analysis.series`.
    """
    meta = analysis.series
    if meta.empty:
        return meta
    counting = meta[meta["metric"] == AGGREGATE_METRIC][["source", "platform", "target"]]
    keys = set(counting.itertuples(index=False, name=None))
    own = meta[[key in keys for key in meta[["source", "platform", "target"]].itertuples(
        index=False, name=None)]]  # fmt: skip
    crowded = meta.groupby(["source", "platform"])["target"].nunique()
    many = [bool(crowded.get((s, p), 0) > 1) for s, p in zip(own["source"], own["platform"],
                                                              strict=True)]  # fmt: skip
    return own[many]


def network_lines(analysis: Analysis, metrics: Iterable[str]) -> pd.DataFrame:
    """Daily network lines of point-in-time metrics (see the module docstring)."""
    wanted = list(metrics)
    parts: list[pd.DataFrame] = []
    replaced: set[tuple[str, str, str]] = set()
    aggregate = aggregates(analysis)
    aggregate = aggregate[aggregate["metric"].isin(wanted) & (aggregate["period"] == "")]
    if not aggregate.empty and not analysis.daily.empty:
        for series_id, row in aggregate.iterrows():
            replaced.add((str(row["source"]), str(row["platform"]), str(row["metric"])))
            daily = analysis.daily[analysis.daily["series_id"] == series_id]
            if daily.empty:
                continue
            parts.append(
                pd.DataFrame(
                    {
                        "source": row["source"],
                        "platform": row["platform"],
                        "metric": row["metric"],
                        "target": row["target"],
                        "day": daily["day"].to_numpy(),
                        "value": daily["value"].to_numpy(dtype=np.float64),
                        "stale": False,
                        "reporting": 1,
                    }
                )
            )
    totals = analysis.totals
    if not totals.empty:
        chosen = totals[totals["metric"].isin(wanted)]
        keys = list(zip(chosen["source"], chosen["platform"], chosen["metric"], strict=True))
        chosen = chosen[[key not in replaced for key in keys]]
        parts.append(
            chosen.assign(target="", value=chosen["value"].astype(np.float64))[LINE_COLUMNS]
        )
    parts = [part for part in parts if not part.empty]
    if not parts:
        return pd.DataFrame(columns=LINE_COLUMNS)
    lines = pd.concat(parts, ignore_index=True)
    lines["stale"] = lines["stale"].astype(bool)
    return lines.sort_values(["source", "platform", "metric", "target", "day"]).reset_index(
        drop=True
    )


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
        parts = [f"{self.reporting:,} of {self.targets:,} {unit} reported on {iso(self.last_day)}"]
        if self.stale_days:
            parts.append(f"{self.stale_days:,} of {self.days:,} days stale (carried forward)")
        return "; ".join(parts)


def coverage(analysis: Analysis, lines: pd.DataFrame) -> dict[tuple[str, str, str, str], Coverage]:
    """Coverage of each line: on its last day, and stale days over its whole span."""
    result: dict[tuple[str, str, str, str], Coverage] = {}
    for key, frame in lines.groupby(["source", "platform", "metric", "target"], sort=False):
        source, platform, metric, target = (str(part) for part in key)
        last = frame.loc[frame["day"].idxmax()]
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
    return {"fediverse": "servers", "bluesky": "hosts", "wikipedia": "articles"}.get(
        source, "targets"
    )


def line_label(source: str, platform: str, target: str, *, with_source: bool) -> str:
    from tracker.charts.style import platform_name

    name = platform_name(platform)
    if target and target != source:
        name = f"{name} ({target})"
    return f"{name} · {source}" if with_source else name


def span_text(analysis: Analysis) -> str:
    if analysis.first_day is None or analysis.last_day is None:
        return "no data"
    return f"{iso(analysis.first_day)} to {iso(analysis.last_day)} (UTC days)"
