"""quality.png: how far to trust the other charts: coverage per day, and every flag.

Top: one strip per measured group (source, platform, metric) along the whole
time range, one cell a day: dark green when every target of the group reported,
lighter as fewer did, amber when the day's total carries missing values forward
(stale), blank when nothing was measured. The flags the analysis raised sit on
the strips: steps (re-indexes, left out of growth), decreases of counters,
dropouts and spikes (readings left out). A strip per group rather than a line
per source makes gaps visible at a glance, and the flags show where they are.
Only the metrics the report draws get strips, so a fediverse database with a
dozen metrics stays readable; flags of other metrics are counted in the caption.

Bottom: flags per month, stacked by kind, over every series: whether the data
got cleaner or messier over time.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from tracker.analysis.conventions import timestamps
from tracker.analysis.pipeline import Analysis
from tracker.analysis.quality import DECREASE, DROPOUT, SPIKE, STEP
from tracker.catalogue import platform_name
from tracker.charts.base import Chart
from tracker.charts.data import describe, iso, ordered_sources, span_text
from tracker.charts.figure import caption, empty_chart, finish, message, new_figure
from tracker.charts.style import (
    DECREASE_COLOUR,
    OUTLIER_COLOUR,
    STEP_COLOUR,
    count_axis,
    date_axis,
    dates,
    owner,
    styled,
)

NAME = "quality.png"
TITLE = "Data quality: coverage per day and flagged points"
METRIC_NAMES = {
    "users_total": "accounts",
    "users_active_month": "MAU",
    "pageviews": "page views",
    "registrations": "sign-ups",
    "tagged_posts": "tagged posts",
}
MAX_ROWS = 14
FULL = to_rgba("#2e7d32")
PARTIAL = to_rgba("#b9dfb0")
STALE = to_rgba("#f0a830")
KINDS = {
    STEP: ("^", STEP_COLOUR, True, "step: level shift, not growth"),
    DECREASE: ("v", DECREASE_COLOUR, True, "decrease: a counter fell"),
    DROPOUT: ("o", OUTLIER_COLOUR, False, "dropout: reading too low, left out"),
    SPIKE: ("D", OUTLIER_COLOUR, False, "spike: reading too high, left out"),
}
ROW_COLUMNS = ["row", "label", "day", "fraction", "stale"]


def plot_coverage(axes: Axes, cells: pd.DataFrame, flags: pd.DataFrame) -> Figure:
    """Strips of `cells` (row, label, day, fraction 0..1, stale) and `flags` (row, day, kind)."""
    labels = cells.drop_duplicates("row").sort_values("row")["label"].tolist()
    first, last = int(cells["day"].min()), int(cells["day"].max())
    image = np.ones((len(labels), last - first + 1, 4))
    rows = cells["row"].to_numpy(dtype=np.int64)
    columns = cells["day"].to_numpy(dtype=np.int64) - first
    image[rows, columns] = _colours(cells["fraction"].to_numpy(dtype=np.float64))
    image[rows[cells["stale"].to_numpy(bool)], columns[cells["stale"].to_numpy(bool)]] = STALE
    start, end = dates([first, last + 1])
    axes.imshow(
        image,
        extent=(start, end, len(labels), 0),
        aspect="auto",
        interpolation="nearest",
        zorder=1,
    )
    for kind, (marker, colour, filled, label) in KINDS.items():
        chosen = flags[flags["kind"] == kind]
        if chosen.empty:
            continue
        axes.scatter(
            dates(chosen["day"]) + 0.5,
            chosen["row"].to_numpy(dtype=np.float64) + 0.5,
            marker=marker,
            s=26,
            facecolors=colour if filled else "white",
            edgecolors=colour,
            linewidths=1.0,
            zorder=3,
            label=label,
        )
    axes.set_yticks(np.arange(len(labels)) + 0.5, labels)
    axes.tick_params(axis="y", length=0)
    axes.set_ylim(len(labels), 0)
    axes.grid(False)
    for row in range(1, len(labels)):
        axes.axhline(row, color="white", linewidth=2, zorder=2)
    date_axis(axes)
    return owner(axes)


def plot_flag_counts(axes: Axes, monthly: pd.DataFrame) -> Figure:
    """Stacked bars of flags per month: `monthly` has a month index and a column per kind."""
    x = dates(monthly.index.to_numpy(dtype=np.int64))
    bottom = np.zeros(len(monthly))
    for kind, (_, colour, filled, label) in KINDS.items():
        if kind not in monthly:
            continue
        values = monthly[kind].to_numpy(dtype=np.float64)
        axes.bar(
            x,
            values,
            width=26,
            bottom=bottom,
            align="edge",
            color=colour if filled else "white",
            edgecolor=colour,
            linewidth=0.8,
            label=label,
        )
        bottom += values
    count_axis(axes, "flags per month")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    date_axis(axes)
    return owner(axes)


def draw(analysis: Analysis) -> Chart:
    cells, row_keys = _cells(analysis)
    if cells.empty:
        text = (
            "No data to check yet: run `tracker collect` (or `tracker import FILE`), then "
            "`tracker report` shows here which days each source covered and what was flagged."
        )
        note = f"Data: {span_text(analysis)}."
        return empty_chart(NAME, TITLE, text, note)
    flags = _flags(analysis)
    placed = flags.merge(row_keys, on=["source", "platform", "metric"], how="inner")
    monthly = _monthly(flags)
    with styled():
        figure = new_figure(TITLE)
        top, bottom = figure.subplots(
            2, 1, sharex=True, height_ratios=[max(3, min(len(row_keys), 8)), 2]
        )
        plot_coverage(top, cells, placed)
        top.set_title("Coverage per day, and where flags were raised", loc="left")
        if monthly.empty:
            message(bottom, "No flags raised: no dropouts, spikes, steps or decreases.")
        else:
            plot_flag_counts(bottom, monthly)
        bottom.set_title("Flags per month, every series", loc="left")
        text = _summary(analysis, cells, flags, placed)
        caption(figure, text, _legend())
    page = (
        "Top: one strip per source, platform and measure; each day is dark green when every "
        "target reported, lighter green when only some did, amber when missing targets' last "
        "values were carried forward (stale), blank when nothing was measured. Markers: "
        "steps (a re-index: the jump is not counted as growth), decreases of counters that "
        "should only grow, dropouts and spikes (readings left out of every figure). Bottom: "
        f"flags per month. {text}"
    )
    return Chart(NAME, TITLE, page, finish(figure))


def _colours(fraction: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Lighter green as fewer targets reported, dark green when all did."""
    weight = np.clip(fraction, 0.0, 1.0)[:, None]
    return np.asarray(PARTIAL) * (1 - weight) + np.asarray(FULL) * weight


def _cells(analysis: Analysis) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One cell per group and day, and the groups' rows (source, platform, metric, row)."""
    parts: list[pd.DataFrame] = []
    totals = analysis.totals
    if not totals.empty:
        chosen = totals[totals["metric"].isin(METRIC_NAMES)]
        counted = chosen["reporting"] + chosen["carried"]
        most = counted.groupby([chosen[k] for k in ("source", "platform", "metric")]).transform(
            "max"
        )
        parts.append(
            chosen[["source", "platform", "metric", "day", "stale"]].assign(
                fraction=(chosen["reporting"] / most.clip(lower=1)).to_numpy()
            )
        )
    period = analysis.period_totals
    if not period.empty:
        parts.append(_period_cells(analysis, period[period["metric"].isin(METRIC_NAMES)]))
    parts = [part for part in parts if not part.empty]
    if not parts:
        return pd.DataFrame(columns=ROW_COLUMNS), pd.DataFrame()
    cells = pd.concat(parts, ignore_index=True)
    sources = ordered_sources(cells)
    metric_order = list(METRIC_NAMES)
    keys = cells[["source", "platform", "metric"]].drop_duplicates()
    keys = keys.assign(
        rank_source=keys["source"].map(sources.index),
        rank_metric=keys["metric"].map(metric_order.index),
    ).sort_values(["rank_source", "platform", "rank_metric"])
    hidden = max(len(keys) - MAX_ROWS, 0)
    keys = keys.head(MAX_ROWS).reset_index(drop=True)
    keys["row"] = np.arange(len(keys))
    keys["label"] = [
        " · ".join(part for part in (source, platform_name(platform), METRIC_NAMES[metric]) if part)
        for source, platform, metric in keys[["source", "platform", "metric"]].itertuples(
            index=False
        )
    ]
    cells = cells.merge(keys[["source", "platform", "metric", "row", "label"]], how="inner")
    return cells.assign(hidden=hidden), keys[["source", "platform", "metric", "row"]]


def _period_cells(analysis: Analysis, period: pd.DataFrame) -> pd.DataFrame:
    """Weekly sums of per-day or per-week series as days: one strip per source and
    metric (page views of a dozen articles are one strip, not one per platform);
    a week whose values are incomplete counts as half covered."""
    if period.empty:
        return pd.DataFrame()
    weekly = period.groupby(["source", "metric", "week"], as_index=False).agg(
        targets=("targets", "sum"), complete=("complete", "all")
    )
    most = weekly.groupby(["source", "metric"])["targets"].transform("max").clip(lower=1)
    complete = np.where(weekly["complete"].to_numpy(bool), 1.0, 0.5)
    weekly["fraction"] = weekly["targets"].to_numpy() / most.to_numpy() * complete
    weekly["platform"] = ""
    days = weekly.loc[weekly.index.repeat(7)].reset_index(drop=True)
    days["day"] = days["week"].to_numpy() + np.tile(np.arange(7), len(weekly))
    if analysis.first_day is not None and analysis.last_day is not None:
        days = days[(days["day"] >= analysis.first_day) & (days["day"] <= analysis.last_day)]
    return days[["source", "platform", "metric", "day", "fraction"]].assign(stale=False)


def _flags(analysis: Analysis) -> pd.DataFrame:
    flags = analysis.stats.flags
    if flags.empty or analysis.series.empty:
        return pd.DataFrame(columns=["series_id", "day", "kind", "source", "platform", "metric"])
    return flags.join(analysis.series[["source", "platform", "metric"]], on="series_id")


def _monthly(flags: pd.DataFrame) -> pd.DataFrame:
    if flags.empty:
        return pd.DataFrame()
    month = timestamps(flags["day"].to_numpy(dtype=np.int64)).tz_localize(None).to_period("M")
    starts = month.to_timestamp().to_numpy().astype("datetime64[D]").astype(np.int64)
    counted = flags.assign(month=starts).groupby(["month", "kind"]).size().unstack(fill_value=0)
    return counted


def _summary(
    analysis: Analysis, cells: pd.DataFrame, flags: pd.DataFrame, placed: pd.DataFrame
) -> str:
    counts = flags["kind"].value_counts() if not flags.empty else pd.Series(dtype=int)
    kinds = ", ".join(f"{kind} {int(counts[kind]):,}" for kind in KINDS if kind in counts)
    stale = cells.groupby("label")["stale"].sum()
    stale_text = ", ".join(f"{label} {int(days):,}" for label, days in stale.items() if days > 0)
    sources = ", ".join(describe(source) for source in ordered_sources(cells))
    parts = [
        f"Sources: {sources}",
        f"data {span_text(analysis)}",
        f"flags raised: {kinds}" if kinds else "no flags raised",
    ]
    elsewhere = len(flags) - len(placed)
    if elsewhere > 0:
        parts.append(f"{elsewhere:,} of them on measures without a strip (posts, servers...)")
    if stale_text:
        parts.append(f"stale days: {stale_text}")
    hidden = int(cells["hidden"].iloc[0]) if "hidden" in cells else 0
    if hidden:
        parts.append(f"{hidden} more groups without a strip (the first {MAX_ROWS} are shown)")
    last = int(cells["day"].max())
    parts.append(f"last day measured {iso(last)}")
    return "; ".join(parts) + "."


def _legend() -> dict[str, Artist]:
    entries: dict[str, Artist] = {
        "all targets reported": Patch(color=FULL),
        "some reported": Patch(color=PARTIAL),
        "stale (carried forward)": Patch(color=STALE),
    }
    for marker, colour, filled, label in KINDS.values():
        entries[label] = Line2D(
            [],
            [],
            marker=marker,
            linestyle="",
            markerfacecolor=colour if filled else "white",
            markeredgecolor=colour,
            markersize=6,
        )
    return entries
