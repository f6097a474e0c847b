"""Network totals: the sum over a source's targets per platform and metric, with coverage.

A total only means something next to how many targets it covers, so every day
carries `reporting` (targets with a reading that day) and `carried` (targets whose
last value was carried forward). A target that misses a day keeps its last value for
at most `carry_days` days, so one outage of a big server is not a fake crash of the
network; a day on which carried values hold more than 1% of the total is `stale`
(5% for a total of at least 1,000 reporting targets: in a crawl of thousands, some
servers miss every day, and a rule that fired daily would keep every week of the
crawl's totals out of growth figures).

Growth of a total never comes from coverage: `change` sums, over the targets present
on both days, each target's own adjusted change. A target joining the crawl (or
coming back after more than `carry_days`) adds its level to `value` but nothing to
`change`, and a target leaving takes nothing from it. Different sources are never
added together: trackers count different things. A source with an aggregate target
(a relay) has that target's own series as its total (see `network_parts`).

Totals are accumulated series by series (`TotalsAccumulator.add`), so a report over
millions of points never needs all daily values in memory at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tracker.analysis.conventions import week_of
from tracker.analysis.network import CRAWL_SOURCE
from tracker.analysis.series import adjusted, last_per_group

GROUP = ["source", "platform", "metric"]
STALE_SHARE = 0.01
LARGE_TOTAL_STALE_SHARE = 0.05
LARGE_TOTAL_REPORTING = 1_000
COLUMNS = [*GROUP, "day", "value", "reporting", "carried", "carried_value", "stale", "change"]


class TotalsAccumulator:
    """Daily totals of point-in-time series, fed with whole series at a time."""

    def __init__(self, first_day: int, last_day: int, carry_days: int = 3) -> None:
        self.first_day = first_day
        self.width = last_day - first_day + 2
        self.carry_days = carry_days
        self.keys: list[tuple[str, str, str]] = []
        self.last_day_of: list[int] = []
        self.grids: dict[str, npt.NDArray[np.float64]] = {}

    def _group_codes(self, keys: list[tuple[str, str, str]]) -> npt.NDArray[np.int64]:
        index = {key: code for code, key in enumerate(self.keys)}
        codes = []
        for key in keys:
            if key not in index:
                index[key] = len(self.keys)
                self.keys.append(key)
            codes.append(index[key])
        size = len(self.keys) * self.width
        for name in ("total", "covered", "reporting", "reported_value", "change"):
            grid = self.grids.get(name, np.zeros(0))
            if grid.size < size:
                self.grids[name] = np.r_[grid, np.zeros(size - grid.size)]
        return np.asarray(codes, dtype=np.int64)

    def add(self, daily: pd.DataFrame, meta: pd.DataFrame, source_last_day: dict[str, int]) -> None:
        """Add whole series (every daily row of each series in `daily`).

        `source_last_day`: the last day any target of each source reported; values are
        not carried past it (a source whose collection stopped does not go on forever).
        """
        if daily.empty:
            return
        sid = daily["series_id"].to_numpy()
        # Names are looked up per series, not per row: a chunk holds millions of rows.
        series_ids = np.unique(sid)
        names = meta.loc[series_ids, GROUP]
        codes = self._group_codes(list(names.itertuples(index=False, name=None)))
        stops = names["source"].map(source_last_day).to_numpy(dtype=np.int64)
        position = np.searchsorted(series_ids, sid)
        group, stop = codes[position], stops[position]
        day = daily["day"].to_numpy().astype(np.int64)
        value = daily["value"].to_numpy(dtype=np.float64)
        level = adjusted(daily)
        same_next = np.r_[sid[1:] == sid[:-1], False]
        following = np.where(same_next, np.r_[day[1:], 0], np.iinfo(np.int64).max)
        until = np.minimum(np.minimum(following - 1, day + self.carry_days), stop)
        cells = group * self.width + (day - self.first_day)
        ends = group * self.width + (until + 1 - self.first_day)
        same_previous = np.r_[False, sid[1:] == sid[:-1]]
        previous_day = np.r_[0, day[:-1]]
        continuing = same_previous & (day - previous_day <= self.carry_days + 1)
        change = np.where(continuing, np.r_[0.0, level[1:] - level[:-1]], 0.0)
        size = len(self.keys) * self.width

        def tally(where: npt.NDArray[np.int64], weights: npt.NDArray[np.float64]) -> Any:
            # bincount, not np.add.at: ten times faster on millions of rows.
            return np.bincount(where, weights=weights, minlength=size)

        ones = np.ones(len(sid))
        self.grids["total"] += tally(cells, value) - tally(ends, value)
        self.grids["covered"] += tally(cells, ones) - tally(ends, ones)
        self.grids["reporting"] += tally(cells, ones)
        self.grids["reported_value"] += tally(cells, value)
        self.grids["change"] += tally(cells, change)

    def frame(self) -> pd.DataFrame:
        """One row per (source, platform, metric, day) that any target covers."""
        if not self.keys:
            return pd.DataFrame(columns=COLUMNS)
        shape = (len(self.keys), self.width)
        total = np.cumsum(self.grids["total"].reshape(shape), axis=1)[:, :-1]
        covered = np.cumsum(self.grids["covered"].reshape(shape), axis=1)[:, :-1]
        reporting = self.grids["reporting"].reshape(shape)[:, :-1]
        reported_value = self.grids["reported_value"].reshape(shape)[:, :-1]
        change = self.grids["change"].reshape(shape)[:, :-1]
        group, offset = np.nonzero(covered > 0.5)
        frame = pd.DataFrame(
            {
                "group": group,
                "day": offset + self.first_day,
                "value": total[group, offset].round().astype(np.int64),
                "reporting": reporting[group, offset].round().astype(np.int64),
                "carried": (covered - reporting)[group, offset].round().astype(np.int64),
                "carried_value": (total - reported_value)[group, offset],
                "change": change[group, offset],
            }
        )
        first_of_group = ~frame["group"].duplicated()
        frame.loc[first_of_group.to_numpy(), "change"] = np.nan
        value = frame["value"].where(frame["value"] != 0)
        share = (frame["carried_value"] / value).fillna(0)
        limit = np.where(
            frame["reporting"] >= LARGE_TOTAL_REPORTING, LARGE_TOTAL_STALE_SHARE, STALE_SHARE
        )
        frame["stale"] = (frame["carried"] > 0) & (share > limit)
        names = pd.DataFrame(self.keys, columns=GROUP)
        frame = frame.join(names, on="group").drop(columns="group")
        return frame[COLUMNS].sort_values([*GROUP, "day"]).reset_index(drop=True)


AGGREGATE_METRIC = "servers_total"
"""A target that also counts servers speaks for a whole network (a relay, a tracker)."""
NETWORK_METRICS = frozenset({AGGREGATE_METRIC, "users_total"})
"""What an aggregate counts of its whole network: servers, and the accounts on them."""
RELAY_PREFIX = "relay:"
"""A relay's own target is `relay:<relay>`; its reading of one host `relay:<relay>/<host>`."""
UNATTRIBUTED_PREFIX = "unattributed:"
"""Points whose meaning could not be told when keys changed (relay total, host, or PDS)."""

GroupKey = tuple[str, str, str]


@dataclass(frozen=True)
class Networks:
    """Which series make each network total.

    `left_out`: series that never add to a total. `sole`: the totals that are one
    aggregate target's own series, by (source, platform, metric), with that target.
    """

    left_out: frozenset[int] = frozenset()
    sole: dict[GroupKey, str] = field(default_factory=dict)


def network_parts(listing: pd.DataFrame) -> Networks:
    """Which series add to the network totals of `listing` (a `list_series` frame).

    An aggregate target counts a whole network itself: it reports `servers_total`,
    or it is a relay's own target (`relay:<relay>`; a Bluesky relay sums
    `accountCount` over the hosts it lists as active). In a source with an
    aggregate, the totals of what it counts (`NETWORK_METRICS`, and any other
    metric it reports) are the aggregate's own series alone: no other target of the
    source adds to them. Per-host readings beside a relay include idle, offline,
    throttled and banned hosts (105,100 accounts for a relay counting 100), and a
    PDS enumerated on its own is one of the hosts the relay already counts. Metrics
    the aggregate does not count (a PDS's `users_active`) still add up over the
    targets that report them; in a source without an aggregate, so do all.

    Several aggregates in one source (two relays) see the same network, so adding
    them would count it twice: the one that covered the most servers on its last
    reading is the total (then the one with more readings, then by name), and the
    others are left out like any other target.

    Never added to any total: a relay's reading of one host (`relay:<relay>/<host>`),
    a series of unknown meaning (`unattributed:...`), and the crawl's own counts
    (source `crawl`: servers alive and measured per software family, already a
    count of a whole family, and no aggregate: `servers_alive` is not
    `servers_total`, so the crawl never becomes the total of any metric; see
    `tracker.analysis.network`). A source holding relay hosts or unattributed series has
    a relay, so its network total is missing when the relay's own series is (a
    listing cut off stores no total), not the sum of every listed host, nor of the
    few PDSes enumerated beside them.
    """
    instant = listing[listing["period"] == ""]
    crawl = instant["source"] == CRAWL_SOURCE
    left_out: set[int] = {int(series_id) for series_id in instant.index[crawl.to_numpy(bool)]}
    sole: dict[GroupKey, str] = {}
    for source, frame in instant[~crawl].groupby("source", sort=True):
        never = [_never_added(str(target)) for target in frame["target"]]
        left_out |= {int(series_id) for series_id in frame.index[never]}
        chosen = _chosen_aggregate(frame)
        if chosen is None and not any(never):
            continue
        own = frame[frame["target"] == chosen]
        covered = NETWORK_METRICS | set(own["metric"])
        beside = frame[(frame["target"] != chosen) & frame["metric"].isin(covered)]
        left_out |= {int(series_id) for series_id in beside.index}
        if chosen is not None and frame["target"].nunique() > 1:  # alone: its only target
            for platform, metric in zip(own["platform"], own["metric"], strict=True):
                sole[(str(source), str(platform), str(metric))] = chosen
    return Networks(frozenset(left_out), sole)


def relay_host(target: str) -> bool:
    """Whether a target is what a relay read about one host (`relay:<relay>/<host>`)."""
    return target.startswith(RELAY_PREFIX) and "/" in target


def _never_added(target: str) -> bool:
    return relay_host(target) or target.startswith(UNATTRIBUTED_PREFIX)


def _chosen_aggregate(frame: pd.DataFrame) -> str | None:
    """The aggregate target of one source that stands for its network, if any."""
    relay = [t.startswith(RELAY_PREFIX) and "/" not in t for t in frame["target"].astype(str)]
    counts = frame["metric"] == AGGREGATE_METRIC
    candidates = frame[counts.to_numpy() | np.asarray(relay, dtype=bool)]
    if candidates.empty:
        return None
    servers = candidates["last_value"].where(candidates["metric"] == AGGREGATE_METRIC)
    ranked = candidates.assign(
        servers=servers.astype(float).fillna(0), readings=candidates["points"].astype(float)
    ).sort_values(["servers", "readings", "target"], ascending=[False, False, True])
    return str(ranked["target"].iloc[0])


def weekly_totals(totals: pd.DataFrame) -> pd.DataFrame:
    """ISO weeks of daily totals: value at the week's last day, change summed over its days.

    `stale`: the end of this week or of the previous one was stale; such weekly changes
    are kept, drawn apart, and excluded from growth figures.
    """
    if totals.empty:
        return pd.DataFrame(
            columns=[*GROUP, "week", "value", "reporting", "carried", "stale", "change"]
        )
    frame = totals.sort_values([*GROUP, "day"]).reset_index(drop=True)
    codes = frame.groupby(GROUP, sort=False).ngroup().to_numpy().astype(np.int64)
    week = week_of(frame["day"].to_numpy().astype(np.int64))
    last = last_per_group([codes, week])
    run = np.cumsum(np.r_[True, last[:-1]]) - 1
    size = int(last.sum())
    change = np.bincount(run, weights=frame["change"].fillna(0).to_numpy(), minlength=size)
    has_change = np.bincount(run, weights=frame["change"].notna(), minlength=size) > 0
    weekly = frame.loc[last, [*GROUP, "value", "reporting", "carried", "stale"]].copy()
    weekly["week"] = week[last] * 7 - 3
    weekly["change"] = np.where(has_change, change, np.nan)
    same_group = np.r_[False, codes[last][1:] == codes[last][:-1]]
    adjacent = same_group & (np.diff(weekly["week"].to_numpy(), prepend=0) == 7)
    weekly.loc[~adjacent, "change"] = np.nan
    stale_before = np.r_[False, weekly["stale"].to_numpy()[:-1]] & same_group
    weekly["stale"] = weekly["stale"].to_numpy() | stale_before
    return weekly.reset_index(drop=True)


def period_totals(weekly_sums: pd.DataFrame, meta: pd.DataFrame) -> pd.DataFrame:
    """Weekly sums of per-period series added over targets, with how many contributed."""
    if weekly_sums.empty:
        return pd.DataFrame(columns=[*GROUP, "week", "value", "targets", "complete"])
    named = weekly_sums.join(meta[GROUP], on="series_id")
    return (
        named.groupby([*GROUP, "week"], as_index=False)
        .agg(value=("value", "sum"), targets=("series_id", "nunique"), complete=("complete", "all"))
        .sort_values([*GROUP, "week"])
        .reset_index(drop=True)
    )
