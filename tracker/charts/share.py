"""share.png: each alternative's share, within one source at a time.

A share needs one denominator measured one way, so it is only computed inside a
source: Wikipedia page views of each platform's article (attention, per language
edition, since each edition follows its own set of articles) and the accounts of
each platform on the servers a source lists. Shares across sources (the official
Mastodon count against a Bluesky tracker) would add numbers that count different
things; overview.png puts those side by side instead.

Stacked to 100%, one band per platform in its colour, the latest share written at
the right edge. Twitter/X is left out: it is what people left, and its attention
would squeeze every alternative into a sliver. Platforms that never reach 2% are
pooled as "other" so the bands that matter stay readable. Only complete weeks of
page views are used: a half week of views is not a share.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from tracker.analysis.pipeline import Analysis
from tracker.catalogue import platform_name
from tracker.charts.base import Chart
from tracker.charts.data import by_source, iso, network_lines, ordered_sources, span_text
from tracker.charts.figure import (
    caption,
    empty_chart,
    finish,
    grid,
    legend_entries,
    new_figure,
)
from tracker.charts.markers import event_lines, label_events
from tracker.charts.style import (
    INK,
    MUTED,
    date_axis,
    dates,
    owner,
    percent_axis,
    platform_colour,
    styled,
)
from tracker.model import Event

NAME = "share.png"
TITLE = "Share among the alternatives (within each source)"
PAGEVIEWS = "pageviews"
ACCOUNTS = "users_total"
MIN_SHARE = 0.02
OTHER = "other"
MAX_PANELS = 3
LABEL_SHARE = 0.03
LABEL_POINTS = 10.0
LEADER = {"arrowstyle": "-", "color": MUTED, "linewidth": 0.6, "shrinkA": 0, "shrinkB": 0}
INCUMBENTS = frozenset({"twitter", "x"})
"""What people left: its attention dwarfs the rest and is not a share among alternatives."""


Panel = tuple[str, str, pd.DataFrame, str]
"""(source, panel title, values: index day numbers and a column per platform, caption note)"""


def plot_share(axes: Axes, wide: pd.DataFrame) -> Figure:
    """Stack `wide` (index: day numbers; one column of values per platform) to 100%."""
    totals = wide.sum(axis=1)
    shares = wide.div(totals.where(totals > 0), axis=0).dropna(how="all").fillna(0.0)
    x = dates(shares.index.to_numpy())
    colours = [MUTED if name == OTHER else platform_colour(str(name)) for name in shares.columns]
    labels = [OTHER if name == OTHER else platform_name(str(name)) for name in shares.columns]
    axes.stackplot(
        x,
        shares.T.to_numpy(),
        colors=colours,
        labels=labels,
        alpha=0.88,
        linewidth=0.3,
        edgecolor="white",
    )
    if len(shares):
        last = shares.iloc[-1].to_numpy(dtype=np.float64)
        middles = np.cumsum(last) - last / 2
        chosen = last >= LABEL_SHARE
        height = axes.get_window_extent().height * 72 / owner(axes).dpi
        gap = min(LABEL_POINTS / max(height, 1.0), 1.0 / max(int(chosen.sum()), 1))
        places = spread(middles[chosen], gap)
        texts = [
            f"{label} {share:.0%}"
            for label, share, keep in zip(labels, last, chosen, strict=True)
            if keep
        ]
        for text, middle, place in zip(texts, middles[chosen], places, strict=True):
            axes.annotate(
                text,
                (x[-1], middle),
                xytext=(x[-1], place),
                textcoords=("data", "data"),
                va="center",
                fontsize=8,
                color=INK,
                annotation_clip=False,
                arrowprops=None if abs(place - middle) < gap / 4 else LEADER,
            )
    axes.set_ylim(0, 1)
    if len(x) > 1:
        axes.set_xlim(x.min(), x.max())
    axes.grid(False)
    percent_axis(axes, "share")
    date_axis(axes)
    return owner(axes)


def spread(middles: npt.NDArray[np.float64], gap: float) -> npt.NDArray[np.float64]:
    """Label heights near `middles` (0..1, ascending) that are at least `gap` apart."""
    places = np.asarray(middles, dtype=np.float64).copy()
    for index in range(1, len(places)):
        places[index] = max(places[index], places[index - 1] + gap)
    if len(places):
        places[-1] = min(places[-1], 1.0)
    for index in range(len(places) - 2, -1, -1):
        places[index] = min(places[index], places[index + 1] - gap)
    return places


def draw(analysis: Analysis, events: Sequence[Event]) -> Chart:
    panels = _wiki_panels(analysis) + _account_panels(analysis)
    if not panels:
        text = (
            "No share to show yet: a share needs two or more platforms measured by the same "
            "source. Follow Wikipedia articles of several platforms (collectors.wikipedia) "
            "or list servers of several platforms (collectors.fediverse), then run "
            "`tracker collect`."
        )
        note = (
            f"Data: {span_text(analysis)}. Shares are never computed across sources: "
            "see overview.png for them side by side."
        )
        return empty_chart(NAME, TITLE, text, note)
    shown = panels[:MAX_PANELS]
    notes: dict[str, list[str]] = {}
    with styled():
        figure = new_figure(TITLE)
        axes_list = grid(figure, len(shown), sharex=False)
        for axes, (source, title, wide, note) in zip(axes_list, shown, strict=True):
            plot_share(axes, wide)
            axes.set_title(title, loc="left")
            event_lines(axes, events)
            notes.setdefault(source, []).append(note)
        handles = legend_entries(axes_list)
        text = (
            by_source(notes) + " Twitter/X is left out (it is what people left). Shares are "
            "within one source, never across sources."
        )
        caption(figure, text, handles)
        label_events(figure, axes_list, events)
    page = (
        "Each band is one platform's share of what a single source measures: page views of "
        "each platform's Wikipedia article (attention, per language edition), or accounts on "
        "the servers a source lists. Twitter/X is left out: the question is where people "
        "went. Platforms under 2% are pooled as other; only complete weeks of page views "
        f"are used. {text}"
    )
    return Chart(NAME, TITLE, page, finish(figure))


def _pooled(wide: pd.DataFrame) -> pd.DataFrame:
    """Columns whose share never reaches MIN_SHARE, summed into `other`; largest first."""
    totals = wide.sum(axis=1)
    shares = wide.div(totals.where(totals > 0), axis=0)
    small = [name for name in wide.columns if not (shares[name] >= MIN_SHARE).any()]
    order = wide.drop(columns=small).mean().sort_values(ascending=False).index.tolist()
    result = wide[order].copy()
    if small:
        result[OTHER] = wide[small].sum(axis=1)
    return result


def _wiki_panels(analysis: Analysis) -> list[Panel]:
    weekly, meta = analysis.period_weekly, analysis.series
    if weekly.empty or meta.empty:
        return []
    named = weekly.join(meta, on="series_id")
    named = named[(named["source"] == "wikipedia") & (named["metric"] == PAGEVIEWS)]
    named = named[~named["platform"].str.lower().isin(INCUMBENTS)]
    if named.empty:
        return []
    named = named.assign(wiki=named["target"].str.split("/", n=1).str[0])
    named = named[named["complete"].astype(bool)]
    volume = named.groupby("wiki")["value"].sum()
    order = sorted(volume.index, key=lambda wiki: (wiki != "en.wikipedia", -volume[wiki]))
    panels: list[Panel] = []
    for wiki in order:
        part = named[named["wiki"] == wiki]
        wide = part.pivot_table(index="week", columns="platform", values="value", aggfunc="sum")
        if wide.shape[1] < 2 or len(wide) < 1:
            continue
        wide = _pooled(wide.fillna(0.0))
        articles = part["target"].nunique()
        title = f"Attention: {wiki} page views per week, by platform"
        note = (
            f"{articles} {wiki} articles, weeks {iso(int(wide.index.min()))} to "
            f"{iso(int(wide.index.max()) + 6)}"
        )
        wide.index = wide.index + 3  # each week drawn at its Thursday, as in japan.png
        panels.append(("wikipedia", title, wide, note))
    return panels


def _account_panels(analysis: Analysis) -> list[Panel]:
    lines = network_lines(analysis, [ACCOUNTS])
    lines = lines[(lines["target"] == "") & ~lines["platform"].str.lower().isin(INCUMBENTS)]
    panels: list[Panel] = []
    if lines.empty:
        return panels
    for source in ordered_sources(lines):
        part = lines[lines["source"] == source]
        wide = part.pivot_table(index="day", columns="platform", values="value", aggfunc="sum")
        wide = wide.dropna()
        if wide.shape[1] < 2 or wide.empty:
            continue
        wide = _pooled(wide)
        title = f"Accounts on the servers {source} lists, by platform"
        note = (
            f"accounts on days on which every platform reported, "
            f"{iso(int(wide.index.min()))} to {iso(int(wide.index.max()))}"
        )
        panels.append((source, title, wide, note))
    return panels
