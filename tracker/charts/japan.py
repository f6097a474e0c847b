"""japan.png: Japanese servers, and Japanese Wikipedia attention per platform.

The article behind this project asked whether Japanese users went back to mixi
or on to Mastodon and Misskey. Two panels answer it with two kinds of evidence:
the accounts of the Japanese servers named in `report.japan` (their own counts,
one line each, coloured by platform and told apart by shade and dash), and the
daily page views of the Japanese Wikipedia articles about each platform (a
proxy for attention where a platform, like mixi or Twitter/X, publishes no
numbers). Page views span orders of magnitude (Twitter/X against mixi), so that
panel is on a log scale; its values are weekly means per day, which removes the
weekday rhythm without hiding a week-long surge, drawn at each week's Thursday so
a surge in the week of an event does not appear to come before it. Both panels
share one date axis, so an event lines up across them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from tracker.analysis.pipeline import Analysis
from tracker.catalogue import platform_name
from tracker.charts.base import Chart
from tracker.charts.data import describe, flag_points, iso, outlier_points, span_text
from tracker.charts.figure import caption, finish, legend_outside, message, new_figure
from tracker.charts.markers import event_lines, label_events
from tracker.charts.style import (
    date_axis,
    draw_line,
    finish_accounts,
    log_axis,
    owner,
    platform_colour,
    shade,
    styled,
)
from tracker.config import ReportSettings
from tracker.model import Event

NAME = "japan.png"
TITLE = "Japan 日本: Japanese servers and Japanese Wikipedia attention"
WIKI = "ja.wikipedia"
ACCOUNTS = "users_total"
PAGEVIEWS = "pageviews"
DASHES = ("-", "--", "-.", ":")


def plot_servers(
    axes: Axes,
    servers: pd.DataFrame,
    outliers: pd.DataFrame | None = None,
    flags: pd.DataFrame | None = None,
) -> Figure:
    """Accounts per server: rows of target, platform, day, value; excluded readings and
    steps as in `style.mark_quality`."""
    seen: dict[str, int] = {}
    maxima = []
    for (target, platform), frame in servers.groupby(["target", "platform"], sort=False):
        nth = seen.get(str(platform), 0)
        seen[str(platform)] = nth + 1
        colour = shade(platform_colour(str(platform)), min(0.15 * nth, 0.6))
        label = f"{target} ({platform_name(str(platform))})"
        draw_line(axes, frame, label, colour, linestyle=DASHES[nth % len(DASHES)])
        maxima.append(float(frame["value"].max()))
    return finish_accounts(axes, maxima, outliers, flags)


def plot_attention(axes: Axes, views: pd.DataFrame) -> Figure:
    """Page views per day (weekly mean): rows of label, platform, day, value; log scale."""
    for (label, platform), frame in views.groupby(["label", "platform"], sort=False):
        draw_line(axes, frame, str(label), platform_colour(str(platform)))
    axes.set_ylabel("page views per day (weekly mean, log scale)")
    if (views["value"] > 0).any():
        log_axis(axes)
    date_axis(axes)
    return owner(axes)


def draw(analysis: Analysis, events: Sequence[Event], report: ReportSettings) -> Chart:
    servers = _servers(analysis, report.japan)
    views = _views(analysis)
    missing = [key for key in report.japan if servers.empty or key not in set(servers["target"])]
    notes: list[str] = []
    with styled():
        figure = new_figure(TITLE)
        top, bottom = figure.subplots(2, 1, sharex=True)
        top.set_title("Japanese servers: accounts (日本のサーバー)", loc="left")
        if servers.empty:
            message(
                top,
                "No Japanese server counts yet: list "
                + ", ".join(report.japan or ["mstdn.jp", "misskey.io"])
                + " under collectors.fediverse.instances and run `tracker collect`.",
            )
        else:
            ids = pd.Index(servers["series_id"].unique())
            plot_servers(top, servers, outlier_points(analysis, ids), flag_points(analysis, ids))
            legend_outside(top)
            event_lines(top, events)
            sources = ", ".join(sorted(servers["source"].unique()))
            notes.append(
                f"Servers: {servers['target'].nunique()} of {len(report.japan)} listed in "
                f"report.japan ({sources}), last reading {iso(int(servers['day'].max()))}"
            )
        if missing:
            notes.append("no data for " + ", ".join(missing))
        bottom.set_title(
            "Japanese Wikipedia attention: page views per day (日本語版ウィキペディアの閲覧数)",
            loc="left",
        )
        if views.empty:
            message(
                bottom,
                "No Japanese Wikipedia page views yet: add ja.wikipedia articles (mixi, "
                "Mastodon, Misskey, Bluesky, X) under collectors.wikipedia and run "
                "`tracker collect`.",
            )
        else:
            plot_attention(bottom, views)
            legend_outside(bottom)
            event_lines(bottom, events)
            notes.append(
                f"Attention: {describe('wikipedia')}, {views['label'].nunique()} {WIKI} "
                f"articles, complete weeks to {iso(int(views['day'].max()) + 3)}"
            )
        text = f"Data: {span_text(analysis)}. " + "; ".join(notes) + "."
        caption(figure, text)
        drawn = [axes for axes, data in ((top, servers), (bottom, views)) if not data.empty]
        label_events(figure, drawn[:1], events)
    page = (
        "Top: accounts on the Japanese servers named in report.japan, each counted by the "
        "server itself. Bottom: daily page views of the Japanese Wikipedia article about each "
        "platform (weekly mean, log scale), attention where a platform publishes no numbers. "
        f"{text}"
    )
    return Chart(NAME, TITLE, page, finish(figure))


def _servers(analysis: Analysis, japan: Sequence[str]) -> pd.DataFrame:
    """Daily accounts of the listed targets (the kept daily values)."""
    meta, daily = analysis.series, analysis.daily
    columns = ["series_id", "source", "target", "platform", "day", "value"]
    if meta.empty or daily.empty or not japan:
        return pd.DataFrame(columns=columns)
    chosen = meta[
        meta["target"].isin(list(japan)) & (meta["metric"] == ACCOUNTS) & (meta["period"] == "")
    ]
    rows = daily[daily["series_id"].isin(chosen.index)]
    named = rows[["series_id", "day", "value"]].join(
        chosen[["source", "target", "platform"]], on="series_id"
    )
    order = {key: index for index, key in enumerate(japan)}
    named = named.assign(order=named["target"].map(order)).sort_values(["order", "day"])
    return named[columns].astype({"value": np.float64})


def _views(analysis: Analysis) -> pd.DataFrame:
    """Weekly mean page views per day of ja.wikipedia articles, complete weeks only."""
    weekly, meta = analysis.period_weekly, analysis.series
    columns = ["label", "platform", "day", "value"]
    if weekly.empty or meta.empty:
        return pd.DataFrame(columns=columns)
    named = weekly.join(meta, on="series_id")
    named = named[
        (named["source"] == "wikipedia")
        & (named["metric"] == PAGEVIEWS)
        & named["target"].str.startswith(f"{WIKI}/")
    ]
    named = named[named["complete"].astype(bool)]
    if named.empty:
        return pd.DataFrame(columns=columns)
    title = named["target"].str.split("/", n=1).str[1].str.replace("_", " ")
    label = [
        f"{platform_name(str(platform))}: {text}"
        for platform, text in zip(named["platform"], title, strict=True)
    ]
    frame = pd.DataFrame(
        {
            "label": label,
            "platform": named["platform"].to_numpy(),
            "day": named["week"].to_numpy(dtype=np.int64) + 3,
            "value": named["value"].to_numpy(dtype=np.float64) / 7.0,
        }
    )
    volume = frame.groupby("label")["value"].sum().sort_values(ascending=False)
    rank = {label: index for index, label in enumerate(volume.index)}
    return frame.assign(rank=frame["label"].map(rank)).sort_values(["rank", "day"])[columns]
