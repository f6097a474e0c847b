"""`analyse`: every measure of the report, computed series chunk by series chunk.

Memory stays bounded whatever the database holds: points are loaded for a chunk of
series at a time (at most `chunk_points`), flagged, reduced to daily and weekly
values, added into the network totals and summarised; only the series asked to be
kept (those a chart draws, or everything when the data is small) stay in memory.
The notebook calls the same function on a small selection and keeps everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, ColumnElement, Engine, ScalarSelect, func, select, type_coerce

from tracker.analysis.conventions import CUMULATIVE_METRICS, DAY_SECONDS, day_of
from tracker.analysis.load import EVERYTHING, SERIES_COLUMNS, load_points
from tracker.analysis.network import COLUMNS as NETWORK_COLUMNS
from tracker.analysis.network import crawl_series, flagged_series, network_view
from tracker.analysis.quality import OUTLIERS, QualityRules, flag_points
from tracker.analysis.series import daily_values, period_sums, weekly_values
from tracker.analysis.summaries import SeriesStats, series_stats
from tracker.analysis.totals import (
    GroupKey,
    TotalsAccumulator,
    network_parts,
    period_totals,
    weekly_totals,
)
from tracker.storage.filters import Filters
from tracker.storage.schema import points, series

CHUNK_POINTS = 2_000_000
KEEP_ALL_POINTS = 3_000_000

Keep = Callable[[pd.DataFrame], "pd.Series[bool]"]
"""Given the series listing (names, span, points, last value), which series to keep."""


@dataclass
class Analysis:
    """What the report and the notebook draw from. Frames are keyed by `series_id`
    (names in `series`), days are day numbers (see `conventions`)."""

    series: pd.DataFrame
    daily: pd.DataFrame
    weekly: pd.DataFrame
    outliers: pd.DataFrame
    stats: SeriesStats
    totals: pd.DataFrame
    weekly_totals: pd.DataFrame
    period_daily: pd.DataFrame
    period_weekly: pd.DataFrame
    period_totals: pd.DataFrame
    first_day: int | None = None
    last_day: int | None = None
    kept: set[int] = field(default_factory=set)
    network_targets: dict[GroupKey, str] = field(default_factory=dict)
    """Totals that are one aggregate target's own series (a relay), with that target."""
    network: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=NETWORK_COLUMNS))
    """The crawl's network view: daily totals per software family with coverage
    (`tracker.analysis.network`); empty when the crawl never ran."""
    clustered: frozenset[int] = frozenset()
    """Series of servers flagged as spam clusters, left out of every network total."""

    @property
    def empty(self) -> bool:
        return self.first_day is None

    @classmethod
    def nothing(cls, series: pd.DataFrame | None = None) -> Analysis:
        """The analysis of an empty database (or of filters that match nothing)."""
        frame = pd.DataFrame()
        return cls(
            series=frame if series is None else series,
            daily=frame,
            weekly=frame,
            outliers=frame,
            stats=SeriesStats(),
            totals=frame,
            weekly_totals=frame,
            period_daily=frame,
            period_weekly=frame,
            period_totals=frame,
        )


def list_series(engine: Engine, filters: Filters = EVERYTHING) -> pd.DataFrame:
    """Matching series with their first and last time, point count and last value.

    Each figure is an index look-up per series (a correlated subquery), so listing
    thousands of series costs about a second, not a scan of every point.
    """
    inner = points.alias("inner_points")
    seconds = type_coerce(inner.c.observed_at, BigInteger)
    conditions = [inner.c.series_id == series.c.id]
    start, end = filters.bounds()
    if start is not None:
        conditions.append(inner.c.observed_at >= start)
    if end is not None:
        conditions.append(inner.c.observed_at < end)

    def each(expression: ColumnElement[Any]) -> ScalarSelect[Any]:
        return select(expression).where(*conditions).scalar_subquery()

    last_value = (
        select(inner.c.value).where(*conditions).order_by(inner.c.observed_at.desc()).limit(1)
    ).scalar_subquery()
    query = filters.apply_names(
        select(
            series.c.id.label("series_id"),
            *(series.c[name] for name in SERIES_COLUMNS),
            each(func.min(seconds)).label("first_t"),
            each(func.max(seconds)).label("last_t"),
            each(func.count()).label("points"),
            last_value.label("last_value"),
        )
    ).order_by(series.c.id)
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    columns = ["series_id", *SERIES_COLUMNS, "first_t", "last_t", "points", "last_value"]
    frame = pd.DataFrame(rows, columns=columns).set_index("series_id")
    return frame[frame["points"] > 0]


def _chunks(listing: pd.DataFrame, limit: int) -> Iterator[list[int]]:
    chunk: list[int] = []
    size = 0
    for series_id, count in zip(listing.index, listing["points"], strict=True):
        if chunk and size + int(count) > limit:
            yield chunk
            chunk, size = [], 0
        chunk.append(int(series_id))
        size += int(count)
    if chunk:
        yield chunk


def analyse(
    engine: Engine,
    filters: Filters = EVERYTHING,
    *,
    carry_days: int = 3,
    rules: QualityRules = QualityRules(),  # noqa: B008 - frozen, shared safely
    keep: Keep | None = None,
    chunk_points: int = CHUNK_POINTS,
) -> Analysis:
    """Analyse the observations matching `filters` (see the module docstring)."""
    listing = list_series(engine, filters)
    meta = listing[list(SERIES_COLUMNS)]
    if listing.empty:
        return Analysis.nothing(meta)
    kept = set(listing.index)
    if keep is not None and int(listing["points"].sum()) > KEEP_ALL_POINTS:
        kept = set(listing.index[keep(listing)])
    first_day = int(listing["first_t"].min()) // DAY_SECONDS
    last_day = int(listing["last_t"].max()) // DAY_SECONDS
    source_last_day = {
        str(source): int(last) // DAY_SECONDS
        for source, last in listing.groupby("source")["last_t"].max().items()
    }
    totals = TotalsAccumulator(first_day, last_day, carry_days)
    networks = network_parts(listing)
    clusters = flagged_series(engine) & frozenset(int(i) for i in listing.index)
    left_out = networks.left_out | clusters
    crawl_ids = crawl_series(listing)
    bounds = Filters(since=filters.since, until=filters.until)
    daily_parts, weekly_parts, outlier_parts, stat_parts, crawl_parts = [], [], [], [], []
    instant = listing[listing["period"] == ""]
    for ids in _chunks(instant, chunk_points):
        frame = _listed(load_points(engine, bounds, ids).frame, listing)
        cumulative = meta.loc[frame["series_id"], "metric"].isin(CUMULATIVE_METRICS).to_numpy()
        flagged = flag_points(frame.assign(cumulative=cumulative), cumulative, rules)
        del frame
        daily = daily_values(flagged)
        weekly = weekly_values(daily)
        outliers = flagged[flagged["flag"].isin(OUTLIERS)]
        del flagged
        totals.add(daily[~daily["series_id"].isin(left_out)], meta, source_last_day)
        crawl_parts.append(daily[daily["series_id"].isin(crawl_ids)])
        stat_parts.append(series_stats(daily, weekly, outliers))
        daily_parts.append(daily[daily["series_id"].isin(kept)])
        weekly_parts.append(weekly[weekly["series_id"].isin(kept)])
        outlier_parts.append(outliers[outliers["series_id"].isin(kept)])
    period_daily_parts, period_weekly_parts = [], []
    for period in ("day", "week"):
        for ids in _chunks(listing[listing["period"] == period], chunk_points):
            frame = _listed(load_points(engine, bounds, ids).frame, listing)
            period_weekly_parts.append(period_sums(frame, period))
            chosen = frame[frame["series_id"].isin(kept)]
            period_daily_parts.append(chosen.assign(day=day_of(chosen["t"].to_numpy())))
    daily_totals = totals.frame()
    period_weekly = _concat(period_weekly_parts)
    return Analysis(
        series=meta,
        daily=_concat(daily_parts),
        weekly=_concat(weekly_parts),
        outliers=_concat(outlier_parts),
        stats=SeriesStats.combine(stat_parts),
        totals=daily_totals,
        weekly_totals=weekly_totals(daily_totals),
        period_daily=_concat(period_daily_parts),
        period_weekly=period_weekly,
        period_totals=period_totals(period_weekly, meta),
        first_day=first_day,
        last_day=last_day,
        kept=kept,
        network_targets=networks.sole,
        network=network_view(daily_totals, _concat(crawl_parts), meta, carry_days),
        clustered=clusters,
    )


def _listed(frame: pd.DataFrame, listing: pd.DataFrame) -> pd.DataFrame:
    """The points within the span the listing found for their series.

    Each chunk is read in its own snapshot, after the listing: readings a collection
    committed meanwhile outside that span (a new day, a backfill of older ones) would
    fall outside the days the totals were sized for. They wait for the next report.
    """
    ids = listing.index.to_numpy(dtype=np.int64)  # sorted: listed by id
    at = np.searchsorted(ids, frame["series_id"].to_numpy(dtype=np.int64))
    first = listing["first_t"].to_numpy(dtype=np.int64)[at]
    last = listing["last_t"].to_numpy(dtype=np.int64)[at]
    t = frame["t"].to_numpy()
    inside = (t >= first) & (t <= last)
    return frame if bool(inside.all()) else frame[inside].reset_index(drop=True)


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [part for part in parts if not part.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


__all__ = ["Analysis", "analyse", "list_series"]
