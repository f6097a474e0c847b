"""network.png: the crawled fediverse, accounts and monthly active users per software family.

The crawl measures every server it can reach, so for the first time the lines are
whole families (Mastodon with its forks, Misskey with Sharkey and Firefish, Lemmy,
Pleroma and Akkoma, ...) rather than a dozen listed servers. The lines are the
analysis's network view (`tracker.analysis.network`): daily totals with missing
servers carried forward for a few days (drawn light), spam clusters left out.
A total means little without how much of the family it covers, so a strip under
the counts shows coverage (servers measured ÷ servers the crawl found alive) per
family, and the caption gives it in numbers for the last day.

Families beyond the largest few are added into one grey "other" line: dozens of
small families would make the legend unreadable and their lines a smear.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from tracker.analysis.network import ACCOUNTS, ACTIVE, flagged_per_family, latest
from tracker.analysis.pipeline import Analysis
from tracker.catalogue import platform_name
from tracker.charts.base import Chart
from tracker.charts.data import iso, span_text
from tracker.charts.figure import caption, empty_chart, finish, message, new_figure
from tracker.charts.markers import event_lines, label_events
from tracker.charts.style import (
    MUTED,
    count_axis,
    date_axis,
    draw_line,
    log_if_wide,
    owner,
    percent_axis,
    platform_colour,
    styled,
)
from tracker.model import Event

NAME = "network.png"
TITLE = "The crawled fediverse: accounts and monthly active users per software family"
MAX_FAMILIES = 7
OTHER = "other"
NO_CRAWL = (
    "No crawl yet: this chart needs `tracker crawl` (collectors.fediverse.discover in "
    "config.yaml), which finds every reachable fediverse server from a few seeds, "
    "measures each one and records how many of each family were alive."
)
READING = (
    "Each line is the sum over the servers of one software family (forks count with "
    "their parent), as the crawl measured them; a server missing for a day keeps its "
    "last value for up to 3 days (drawn light), and servers flagged as spam clusters "
    "are left out. Coverage = servers measured ÷ servers the crawl found alive."
)


def families(view: pd.DataFrame, limit: int = MAX_FAMILIES) -> list[str]:
    """The families drawn on their own: the largest by accounts on their last day."""
    last = latest(view)
    accounts = last[last["metric"] == ACCOUNTS].set_index("platform")["value"]
    ranked = sorted(view["platform"].unique(), key=lambda p: (-float(accounts.get(p, 0)), p))
    return [str(platform) for platform in ranked[:limit]]


def lines_of(view: pd.DataFrame, metric: str, shown: Sequence[str]) -> pd.DataFrame:
    """One metric's daily lines: the shown families, and the rest added into `other`."""
    chosen = view[view["metric"] == metric]
    own = chosen[chosen["platform"].isin(list(shown))]
    rest = chosen[~chosen["platform"].isin(list(shown))]
    parts = [own[["platform", "day", "value", "stale", "coverage", "servers_alive"]]]
    if not rest.empty:
        summed = rest.groupby("day", as_index=False).agg(
            value=("value", "sum"), stale=("stale", "any")
        )
        parts.append(summed.assign(platform=OTHER, coverage=np.nan, servers_alive=np.nan))
    lines = pd.concat(parts, ignore_index=True)
    order = {platform: rank for rank, platform in enumerate([*shown, OTHER])}
    lines = lines.sort_values("platform", key=lambda column: column.map(order), kind="stable")
    return lines.astype({"value": np.float64, "stale": bool}).reset_index(drop=True)


def colour_of(platform: str) -> str:
    return MUTED if platform == OTHER else platform_colour(platform)


def name_of(platform: str, hidden: int) -> str:
    return f"{hidden} other families" if platform == OTHER else platform_name(platform)


def plot_counts(axes: Axes, lines: pd.DataFrame, label: str, hidden: int = 0) -> Figure:
    """Daily lines (platform, day, value, stale), one colour per family."""
    maxima = []
    for platform, frame in lines.groupby("platform", sort=False):
        draw_line(axes, frame, name_of(str(platform), hidden), colour_of(str(platform)))
        maxima.append(float(frame["value"].max()))
    if log_if_wide(axes, maxima):
        axes.set_ylabel(f"{label} (log scale)")
    else:
        count_axis(axes, label)
        axes.set_ylim(bottom=0)
    date_axis(axes)
    return owner(axes)


def plot_coverage(axes: Axes, lines: pd.DataFrame) -> Figure:
    """Coverage (0..1) of each family's accounts per day, where the crawl counted the
    family's alive servers (a family it did not count has no coverage to show)."""
    counted = lines[lines["servers_alive"].notna() & lines["coverage"].notna()]
    for platform, frame in counted.groupby("platform", sort=False):
        draw_line(
            axes,
            frame[["day", "coverage"]].rename(columns={"coverage": "value"}),
            f"{platform_name(str(platform))}: coverage",
            colour_of(str(platform)),
            linewidth=1.2,
        )
    percent_axis(axes, "measured ÷ alive")
    axes.set_ylim(0, 1.05)
    date_axis(axes)
    return owner(axes)


def draw(analysis: Analysis, events: Sequence[Event]) -> Chart:
    view = analysis.network
    if view.empty or not (view["metric"] == ACCOUNTS).any():
        return empty_chart(NAME, TITLE, NO_CRAWL, f"Data: {span_text(analysis)}.")
    shown = families(view)
    hidden = int(view["platform"].nunique()) - len(shown)
    accounts = lines_of(view, ACCOUNTS, shown)
    active = lines_of(view, ACTIVE, shown)
    text = _caption(analysis, shown)
    with styled():
        figure = new_figure(TITLE)
        panels = figure.subplot_mosaic(
            [["accounts", "active"], ["coverage", "coverage"]],
            height_ratios=[3, 1.2],
            sharex=True,
        )
        plot_counts(panels["accounts"], accounts, "accounts", hidden)
        panels["accounts"].set_title("Accounts", loc="left")
        if active.empty:
            message(panels["active"], "No server of the crawl published monthly active users.")
        else:
            plot_counts(panels["active"], active, "monthly active users", hidden)
            panels["active"].set_title("Monthly active users", loc="left")
        if accounts["servers_alive"].notna().any():
            plot_coverage(panels["coverage"], accounts)
            panels["coverage"].set_title(
                "Coverage of the accounts: servers measured ÷ servers alive", loc="left"
            )
        else:
            message(panels["coverage"], "The crawl recorded no count of alive servers.")
        for axes in panels.values():
            axes.xaxis.set_tick_params(labelbottom=True)  # shared, but each panel dated
            event_lines(axes, events)
        caption(figure, text, _legend(accounts, hidden))
        label_events(figure, [panels["accounts"], panels["active"]], events)
    return Chart(NAME, TITLE, f"{READING} {text}", finish(figure))


def _caption(analysis: Analysis, shown: Sequence[str]) -> str:
    """Coverage of every drawn family on its last day, and what was left out."""
    last = latest(analysis.network)
    accounts = last[last["metric"] == ACCOUNTS].set_index("platform").to_dict("index")
    notes: list[str] = []
    for platform in shown:
        if platform not in accounts:
            continue
        row = accounts[platform]
        measured = int(row["servers_measured"])
        alive = row["servers_alive"]
        if pd.isna(alive):
            cover = f"{measured:,} servers measured (no count of alive servers)"
        else:
            cover = f"{measured:,} of {int(alive):,} alive servers measured ({row['coverage']:.0%})"
        carried = int(row["servers_carried"])
        if carried:
            cover += f", {carried:,} carried forward"
        notes.append(f"{platform_name(platform)} {cover} on {iso(int(row['day']))}")
    flagged = flagged_per_family(analysis.series, analysis.clustered)
    text = f"Source: fediverse servers found by `tracker crawl`, {_span(analysis)}. "
    text += "Coverage: " + "; ".join(notes) + "."
    if flagged:
        listed = ", ".join(f"{platform_name(p)} {n:,}" for p, n in sorted(flagged.items()))
        text += f" Left out as spam clusters: {sum(flagged.values()):,} servers ({listed})."
    return text


def _span(analysis: Analysis) -> str:
    days = analysis.network["day"]
    return f"{iso(int(days.min()))} to {iso(int(days.max()))} (UTC days)"


def _legend(lines: pd.DataFrame, hidden: int) -> dict[str, Artist]:
    entries: dict[str, Artist] = {
        name_of(str(platform), hidden): Line2D([], [], color=colour_of(str(platform)))
        for platform in lines["platform"].unique()
    }
    entries["light: a missing server's value carried forward"] = Line2D(
        [], [], color=MUTED, alpha=0.35
    )
    return entries
