"""mastodon_compare.png: the crawl's Mastodon total against the official joinmastodon series.

Two counts of "all of Mastodon" that never agree, side by side for the days the
crawl ran: accounts and monthly active users of the crawl's Mastodon family (its
forks included) and of joinmastodon.org's statistics, and below them the crawl as
a share of the official figure. The caption says why they differ, since a reader
otherwise takes the gap for people joining or leaving: the two count different
lists of servers, at different times. Neither line is added to or corrected by
the other (sources are never added together).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from tracker.analysis.network import ACCOUNTS, ACTIVE
from tracker.analysis.pipeline import Analysis
from tracker.charts.base import Chart
from tracker.charts.data import iso, span_text
from tracker.charts.figure import caption, empty_chart, finish, message, new_figure
from tracker.charts.markers import event_lines, label_events
from tracker.charts.network import NO_CRAWL
from tracker.charts.style import (
    MUTED,
    compact,
    count_axis,
    date_axis,
    draw_line,
    owner,
    percent_axis,
    platform_colour,
    styled,
)
from tracker.model import Event

NAME = "mastodon_compare.png"
TITLE = "Mastodon: the crawl's total against the official joinmastodon.org count"
OFFICIAL = "joinmastodon"
FAMILY = "mastodon"
CRAWL_COLOUR = platform_colour(FAMILY)
OFFICIAL_COLOUR = "#e08000"
MEASURES = {ACCOUNTS: "accounts", ACTIVE: "monthly active users"}
WHY = (
    "Why they differ: joinmastodon.org counts the servers its own crawler knows (the "
    "servers on joinmastodon's instances list), while `tracker crawl` counts "
    "the Mastodon-family servers (forks such as glitch-soc, Hometown and Fedibird included) "
    "it reached by following peer lists from its seeds and that answered NodeInfo. Each "
    "misses servers the other has: islands no peer list names, servers hiding their peers "
    "or refusing crawlers (robots.txt, HTTP 410, privacy flags) are not in the crawl; "
    "dormant or closed servers may stay in one list long after the other dropped them. "
    "Timing differs too: joinmastodon publishes one figure a day, the crawl keeps each "
    "server's last reading of the UTC day and carries a missing server's value for up to "
    "3 days. The gap is a difference between two server lists, not people joining or "
    "leaving; compare the direction of the lines, not their level."
)


def official_lines(analysis: Analysis, first: int, last: int) -> pd.DataFrame:
    """joinmastodon's daily values (metric, day, value) within the crawl's days."""
    totals = analysis.totals
    if totals.empty:
        return pd.DataFrame(columns=["metric", "day", "value", "stale"])
    chosen = totals[
        (totals["source"] == OFFICIAL)
        & (totals["platform"] == FAMILY)
        & totals["metric"].isin([*MEASURES, "servers_total"])
        & (totals["day"] >= first)
        & (totals["day"] <= last)
    ]
    return chosen[["metric", "day", "value", "stale"]].astype({"value": np.float64})


def crawl_lines(analysis: Analysis) -> pd.DataFrame:
    """The crawl's Mastodon family (metric, day, value, stale, servers_alive)."""
    view = analysis.network
    chosen = view[(view["platform"] == FAMILY) & view["metric"].isin(list(MEASURES))]
    columns = ["metric", "day", "value", "stale", "servers_alive"]
    return chosen[columns].astype({"value": np.float64, "stale": bool})


def ratios(crawl: pd.DataFrame, official: pd.DataFrame) -> pd.DataFrame:
    """The crawl ÷ joinmastodon per metric on the days both have (metric, day, value)."""
    both = crawl[["metric", "day", "value"]].merge(
        official[["metric", "day", "value"]], on=["metric", "day"], suffixes=("", "_official")
    )
    both = both[both["value_official"] > 0]
    return both.assign(value=both["value"] / both["value_official"])[["metric", "day", "value"]]


def plot_pair(axes: Axes, crawl: pd.DataFrame, official: pd.DataFrame, label: str) -> Figure:
    """One measure: the crawl's line and joinmastodon's."""
    draw_line(axes, crawl, f"tracker crawl: {label}", CRAWL_COLOUR)
    if official.empty:
        axes.text(
            0.02,
            0.05,
            "no joinmastodon value on these days",
            transform=axes.transAxes,
            color=MUTED,
            fontsize=8.5,
        )
    else:
        draw_line(axes, official, f"joinmastodon.org: {label}", OFFICIAL_COLOUR)
    count_axis(axes, label)
    axes.set_ylim(bottom=0)
    date_axis(axes)
    return owner(axes)


def plot_ratio(axes: Axes, shares: pd.DataFrame) -> Figure:
    for metric, frame in shares.groupby("metric", sort=True):
        draw_line(
            axes,
            frame,
            f"crawl ÷ joinmastodon: {MEASURES[str(metric)]}",
            CRAWL_COLOUR,
            linestyle="-" if metric == ACCOUNTS else "--",
        )
    axes.axhline(1.0, color=MUTED, linewidth=0.8)
    percent_axis(axes, "crawl ÷ official")
    low = float(shares["value"].min()) if not shares.empty else 1.0
    high = float(shares["value"].max()) if not shares.empty else 1.0
    axes.set_ylim(min(0.0, low), max(1.2, high * 1.1))
    date_axis(axes)
    return owner(axes)


def draw(analysis: Analysis, events: Sequence[Event]) -> Chart:
    crawl = crawl_lines(analysis)
    note = f"Data: {span_text(analysis)}."
    if analysis.network.empty:
        return empty_chart(NAME, TITLE, NO_CRAWL, note)
    if crawl.empty or not (crawl["metric"] == ACCOUNTS).any():
        text = "The crawl measured no Mastodon server yet: nothing to compare with joinmastodon."
        return empty_chart(NAME, TITLE, text, note)
    first, last = int(crawl["day"].min()), int(crawl["day"].max())
    official = official_lines(analysis, first, last)
    if official.empty:
        text = (
            "No official joinmastodon series on the crawl's days to compare with: enable the "
            "joinmastodon collector (`tracker collect`), which backfills the official daily "
            "figures."
        )
        return empty_chart(NAME, TITLE, text, note)
    shares = ratios(crawl, official)
    text = _numbers(crawl, official, shares)
    with styled():
        figure = new_figure(TITLE)
        panels = figure.subplot_mosaic(
            [["accounts", "active"], ["ratio", "ratio"]], height_ratios=[3, 1.6], sharex=True
        )
        for key, metric in (("accounts", ACCOUNTS), ("active", ACTIVE)):
            own = crawl[crawl["metric"] == metric]
            theirs = official[official["metric"] == metric]
            if own.empty:
                message(panels[key], f"The crawl has no {MEASURES[metric]} of Mastodon servers.")
                continue
            plot_pair(panels[key], own, theirs, MEASURES[metric])
            panels[key].set_title(MEASURES[metric].capitalize(), loc="left")
        if shares.empty:
            message(panels["ratio"], "No day on which both counted the same measure.")
        else:
            plot_ratio(panels["ratio"], shares)
            panels["ratio"].set_title("The crawl as a share of joinmastodon's figure", loc="left")
        for axes in panels.values():
            axes.xaxis.set_tick_params(labelbottom=True)  # shared, but each panel dated
            event_lines(axes, events)
        caption(figure, f"{text} {WHY}", _legend())
        label_events(figure, [panels["accounts"], panels["active"]], events)
    return Chart(NAME, TITLE, f"{text}\n\n{WHY}", finish(figure))


def _numbers(crawl: pd.DataFrame, official: pd.DataFrame, shares: pd.DataFrame) -> str:
    """Both counts on the last day they share, and how many servers each counted."""
    accounts = shares[shares["metric"] == ACCOUNTS]
    if accounts.empty:
        return "The crawl and joinmastodon have no day with accounts in common yet."
    day = int(accounts["day"].max())
    ours = crawl[(crawl["metric"] == ACCOUNTS) & (crawl["day"] == day)].iloc[0]
    theirs = official[(official["metric"] == ACCOUNTS) & (official["day"] == day)].iloc[0]
    share = float(accounts.loc[accounts["day"] == day, "value"].iloc[0])
    text = (
        f"On {iso(day)} the crawl counted {compact(ours['value'])} accounts, joinmastodon.org "
        f"{compact(theirs['value'])} (the crawl is {share:.0%} of it)"
    )
    servers = official[(official["metric"] == "servers_total") & (official["day"] == day)]
    alive = ours["servers_alive"]
    if not servers.empty and not pd.isna(alive):
        text += (
            f"; servers: {int(alive):,} alive in the crawl, "
            f"{int(servers['value'].iloc[0]):,} in joinmastodon's count"
        )
    active = shares[(shares["metric"] == ACTIVE) & (shares["day"] == day)]
    if not active.empty:
        text += f"; monthly active users: the crawl is {float(active['value'].iloc[0]):.0%}"
    return text + ". Source: `tracker crawl` (fediverse servers) and joinmastodon.org statistics."


def _legend() -> dict[str, Artist]:
    return {
        "tracker crawl (Mastodon family)": Line2D([], [], color=CRAWL_COLOUR),
        "joinmastodon.org statistics": Line2D([], [], color=OFFICIAL_COLOUR),
        "crawl ÷ joinmastodon: accounts (solid), monthly active users (dashed)": Line2D(
            [], [], color=CRAWL_COLOUR, linestyle="--"
        ),
    }
