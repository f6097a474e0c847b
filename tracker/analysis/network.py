"""The fediverse network view: daily totals per software family from the crawl, with coverage.

`tracker crawl` measures every reachable server and stores each one as the
collectors do (source `fediverse`, one target per server, platform = its software
family). The network view is the analysis's own daily totals of that source
(`TotalsAccumulator`: carry-forward, stale days, coverage-neutral growth), from the
first day the crawl ran, next to how many servers the crawl found alive:

- `servers_measured`: servers whose reading of that day is in the total;
  `servers_carried`: servers whose last value was carried forward.
- `servers_alive`: the crawl's own count per family (source `crawl`, metric
  `servers_alive`, platform = family; one series per family, so each family needs a
  target of its own: the crawl names it after the family), its last reading of the
  day, carried for `carry_days` like any value. A day without one falls back on the
  servers the total knows (measured + carried).
- `coverage` = servers_measured / servers_alive, at most 1: the day's readings come
  from up to four crawls, `servers_alive` from the last of them, so a server that
  answered in the morning and not in the evening is measured but not alive.

The crawl's own series count servers of a whole family: they never add to a total
(`totals.network_parts`). Servers flagged as a spam cluster (`servers.cluster`) are
left out of every total of the `fediverse` source (`flagged_series`): hundreds of
fresh look-alike servers under one domain would otherwise be counted as a wave of
people. The flag is read as it stands now, for the whole history: a server whose
cluster flag was lifted counts on every day, one still flagged on none.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from tracker.storage.servers import clustered_series

SERVER_SOURCE = "fediverse"
"""The source the crawl stores each server's readings under."""
CRAWL_SOURCE = "crawl"
"""The source of the crawl's network-level counts (platform = family, a target per family)."""
ALIVE = "servers_alive"
MEASURED = "servers_measured"
ACCOUNTS = "users_total"
ACTIVE = "users_active_month"
POSTS = "posts_total"
COLUMNS = [
    "platform",
    "metric",
    "day",
    "value",
    "servers_measured",
    "servers_carried",
    "servers_alive",
    "coverage",
    "stale",
    "change",
]


def flagged_series(engine: Engine) -> frozenset[int]:
    """Series of servers still flagged as a spam cluster: left out of network totals.

    The query is `storage.servers.clustered_series`.
    """
    return clustered_series(engine, SERVER_SOURCE)


def crawl_series(listing: pd.DataFrame) -> pd.Index:
    """Ids of the crawl's own point-in-time series (servers alive and measured per family)."""
    chosen = (listing["source"] == CRAWL_SOURCE) & (listing["period"] == "")
    return listing.index[chosen.to_numpy(dtype=bool)]


def network_view(
    totals: pd.DataFrame, crawl_daily: pd.DataFrame, meta: pd.DataFrame, carry_days: int = 3
) -> pd.DataFrame:
    """Daily totals of the crawled servers per family and metric (`COLUMNS`).

    `totals`: the analysis's daily totals; `crawl_daily`: daily values of the crawl's
    own series (series_id, day, value); `meta`: series names by id. Empty when the
    crawl never ran: the totals of a few listed servers are not the network.
    """
    if crawl_daily.empty or totals.empty:
        return pd.DataFrame(columns=COLUMNS)
    named = crawl_daily[["series_id", "day", "value"]].join(
        meta[["platform", "metric"]], on="series_id"
    )
    first = int(named["day"].min())
    chosen = totals[(totals["source"] == SERVER_SOURCE) & (totals["day"] >= first)]
    if chosen.empty:
        return pd.DataFrame(columns=COLUMNS)
    view = pd.DataFrame(
        {
            "platform": chosen["platform"].astype(str).to_numpy(),
            "metric": chosen["metric"].astype(str).to_numpy(),
            "day": chosen["day"].to_numpy(dtype=np.int64),
            "value": chosen["value"].to_numpy(dtype=np.int64),
            "servers_measured": chosen["reporting"].to_numpy(dtype=np.int64),
            "servers_carried": chosen["carried"].to_numpy(dtype=np.int64),
            "stale": chosen["stale"].to_numpy(dtype=bool),
            "change": chosen["change"].to_numpy(dtype=np.float64),
        }
    )
    alive = _alive(named[named["metric"] == ALIVE], carry_days)
    view = view.merge(alive, on=["platform", "day"], how="left")
    known = (view["servers_measured"] + view["servers_carried"]).astype(np.float64)
    denominator = view["servers_alive"].fillna(known).to_numpy(dtype=np.float64)
    measured = view["servers_measured"].to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(denominator > 0, np.minimum(measured / denominator, 1.0), np.nan)
    view["coverage"] = share
    return view[COLUMNS].sort_values(["platform", "metric", "day"]).reset_index(drop=True)


def _alive(rows: pd.DataFrame, carry_days: int) -> pd.DataFrame:
    """`servers_alive` per family and day, each reading carried for `carry_days` days."""
    if rows.empty:
        return pd.DataFrame(
            {
                "platform": pd.Series(dtype=str),
                "day": pd.Series(dtype=np.int64),
                "servers_alive": pd.Series(dtype=np.float64),
            }
        )
    parts = []
    for platform, frame in rows.groupby("platform", sort=True):
        day = frame["day"].to_numpy(dtype=np.int64)
        value = frame["value"].to_numpy(dtype=np.float64)
        span = np.arange(int(day.min()), int(day.max()) + carry_days + 1, dtype=np.int64)
        at = np.searchsorted(day, span, side="right") - 1  # the last reading on or before
        fresh = span - day[at] <= carry_days
        parts.append(
            pd.DataFrame(
                {"platform": str(platform), "day": span[fresh], "servers_alive": value[at][fresh]}
            )
        )
    return pd.concat(parts, ignore_index=True)


def flagged_per_family(meta: pd.DataFrame, flagged: frozenset[int]) -> dict[str, int]:
    """How many servers of each family were left out as spam clusters."""
    ids = meta.index.intersection(sorted(flagged))
    if ids.empty:
        return {}
    counts = meta.loc[ids].groupby("platform")["target"].nunique()
    return {str(platform): int(count) for platform, count in counts.items()}


def latest(view: pd.DataFrame) -> pd.DataFrame:
    """Per family and metric, the row of the family's last day (the last day it has
    accounts, else any metric): every figure of a family is read on one day."""
    if view.empty:
        return pd.DataFrame(columns=COLUMNS)
    accounts = view[view["metric"] == ACCOUNTS].groupby("platform")["day"].max()
    anything = view.groupby("platform")["day"].max()
    last = anything.copy()
    last.loc[accounts.index] = accounts
    on_day = view["day"].to_numpy() == view["platform"].map(last).to_numpy()
    chosen: pd.DataFrame = view[on_day].reset_index(drop=True)
    return chosen


__all__ = [
    "ALIVE",
    "COLUMNS",
    "CRAWL_SOURCE",
    "MEASURED",
    "SERVER_SOURCE",
    "crawl_series",
    "flagged_per_family",
    "flagged_series",
    "latest",
    "network_view",
]
