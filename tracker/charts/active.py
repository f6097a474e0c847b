"""active_users.png: monthly active users against total accounts, and their ratio.

Accounts only grow: an account made in the November 2022 rush counts forever,
whether or not its owner stayed. Monthly active users (MAU) fall when people
leave, so MAU as a share of accounts is the honest measure of staying. One
column per source that publishes MAU: counts on top (accounts solid, MAU dashed,
same colour per platform), the share below.

For a source with many servers the share is computed only over the servers that
reported both numbers on the same day: a server that publishes accounts but no
MAU would otherwise pull the share down. Bluesky's `users_active` is not drawn:
it counts accounts that are not deactivated, not activity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from tracker.analysis.pipeline import Analysis
from tracker.catalogue import platform_name
from tracker.charts.base import Chart
from tracker.charts.data import (
    by_source,
    coverage,
    describe,
    iso,
    line_label,
    network_lines,
    ordered_sources,
    span_text,
    unit_of,
)
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

NAME = "active_users.png"
TITLE = "Who stayed: monthly active users against total accounts"
ACCOUNTS = "users_total"
ACTIVE = "users_active_month"
MAX_COLUMNS = 3
RATIO_COLUMNS = ["source", "platform", "target", "day", "value", "targets"]


def plot_active(axes: Axes, lines: pd.DataFrame) -> Figure:
    """Accounts (solid) and MAU (dashed) of network lines (`data.LINE_COLUMNS`)."""
    with_source = lines["source"].nunique() > 1
    maxima = []
    ordered = lines.assign(accounts_first=lines["metric"] != ACCOUNTS)
    for (source, platform, target, _, metric), frame in ordered.groupby(
        ["source", "platform", "target", "accounts_first", "metric"], sort=True
    ):
        name = line_label(str(source), str(platform), str(target), with_source=with_source)
        active = metric == ACTIVE
        label = f"{name}: {'monthly active users' if active else 'accounts'}"
        draw_line(
            axes, frame, label, platform_colour(str(platform)), linestyle="--" if active else "-"
        )
        maxima.append(float(frame["value"].max()))
    if log_if_wide(axes, maxima):
        axes.set_ylabel("accounts / monthly active users (log scale)")
    else:
        count_axis(axes, "accounts / monthly active users")
        axes.set_ylim(bottom=0)
    date_axis(axes)
    return owner(axes)


def plot_share(axes: Axes, ratios: pd.DataFrame) -> Figure:
    """MAU as a share of accounts (`RATIO_COLUMNS`: value is the share, 0..1)."""
    with_source = ratios["source"].nunique() > 1
    for (source, platform, target), frame in ratios.groupby(
        ["source", "platform", "target"], sort=False
    ):
        name = line_label(str(source), str(platform), str(target), with_source=with_source)
        draw_line(
            axes, frame, f"{name}: active share", platform_colour(str(platform)), linewidth=2.2
        )
    percent_axis(axes, "MAU ÷ accounts")
    axes.set_ylim(bottom=0)
    date_axis(axes)
    return owner(axes)


def draw(analysis: Analysis, events: Sequence[Event]) -> Chart:
    lines = network_lines(analysis, [ACCOUNTS, ACTIVE])
    with_active = sorted(set(lines.loc[lines["metric"] == ACTIVE, "source"]))
    lines = lines[lines["source"].isin(with_active)]
    no_mau = _bluesky_note(analysis)
    if lines.empty:
        text = (
            "No monthly active users yet. Mastodon, Misskey and Lemmy servers publish them: "
            "run `tracker collect` (fediverse, joinmastodon)."
        )
        note = f"Data: {span_text(analysis)}. {no_mau}".strip()
        return empty_chart(NAME, TITLE, text, note)
    sources = ordered_sources(lines)[:MAX_COLUMNS]
    covered = coverage(analysis, lines)
    notes: dict[str, list[str]] = {}
    with styled():
        figure = new_figure(TITLE)
        grid = figure.subplots(2, len(sources), sharex="col", squeeze=False, height_ratios=[3, 2])
        for column, source in enumerate(sources):
            top, bottom = grid[0][column], grid[1][column]
            part = lines[lines["source"] == source]
            plot_active(top, part)
            ratios = _ratios(analysis, part)
            if ratios.empty:
                message(bottom, "No day on which the same servers reported both numbers.")
            else:
                plot_share(bottom, ratios)
            top.set_title(describe(source, brief=len(sources) > 1), loc="left")
            for axes in (top, bottom):
                event_lines(axes, events)
            unit = unit_of(source)
            notes[source] = _coverage_notes(
                {key: cover.text(unit) for key, cover in covered.items() if key[0] == source},
                _ratio_notes(ratios),
            )
        text = by_source(notes)
        if no_mau:
            text += f" {no_mau}."
        caption(figure, text, _legend(lines))
        label_events(figure, list(grid[0]), events)
    page = (
        "Top: accounts (solid) and monthly active users (dashed). Bottom: active users as a "
        "share of accounts: accounts never shrink, so a falling share means sign-ups that "
        "did not stay. For sources with many servers the share counts only servers that "
        f"reported both numbers that day. {text}"
    )
    return Chart(NAME, TITLE, page, finish(figure))


def _ratios(analysis: Analysis, lines: pd.DataFrame) -> pd.DataFrame:
    """MAU ÷ accounts per line and day, over targets that reported both that day."""
    parts: list[pd.DataFrame] = []
    for (source, platform, target), frame in lines.groupby(
        ["source", "platform", "target"], sort=False
    ):
        daily = _both_daily(analysis, str(source), str(platform), str(target))
        if daily is None:
            wide = frame.pivot_table(index="day", columns="metric", values="value")
            if ACTIVE not in wide or ACCOUNTS not in wide:
                continue
            daily = pd.DataFrame(
                {ACTIVE: wide[ACTIVE], ACCOUNTS: wide[ACCOUNTS], "targets": 1}
            ).dropna()
        daily = daily[daily[ACCOUNTS] > 0]
        parts.append(
            pd.DataFrame(
                {
                    "source": source,
                    "platform": platform,
                    "target": target,
                    "day": daily.index.to_numpy(dtype=np.int64),
                    "value": (daily[ACTIVE] / daily[ACCOUNTS]).to_numpy(dtype=np.float64),
                    "targets": daily["targets"].to_numpy(dtype=np.int64),
                }
            )
        )
    parts = [part for part in parts if not part.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=RATIO_COLUMNS)


def _both_daily(analysis: Analysis, source: str, platform: str, target: str) -> pd.DataFrame | None:
    """Per day: MAU and accounts summed over the targets with both, and how many.

    None for a network total whose servers' daily values were not kept (big
    databases), or for a single series (the line itself is then exact).
    """
    meta = analysis.series
    chosen = meta[
        (meta["source"] == source)
        & (meta["platform"] == platform)
        & meta["metric"].isin([ACCOUNTS, ACTIVE])
        & (meta["period"] == "")
    ]
    if target:
        chosen = chosen[chosen["target"] == target]
    if chosen["target"].nunique() <= 1 or analysis.daily.empty:
        return None
    daily = analysis.daily[analysis.daily["series_id"].isin(chosen.index)]
    if daily.empty:
        return None
    named = daily[["series_id", "day", "value"]].join(chosen[["target", "metric"]], on="series_id")
    wide = named.pivot_table(index=["day", "target"], columns="metric", values="value")
    if ACTIVE not in wide or ACCOUNTS not in wide:
        return None
    both = wide.dropna(subset=[ACTIVE, ACCOUNTS])
    summed = both.groupby(level="day")[[ACTIVE, ACCOUNTS]].sum()
    summed["targets"] = both.groupby(level="day").size()
    return summed


def _legend(lines: pd.DataFrame) -> dict[str, Artist]:
    """A colour per platform and a dash per measure, instead of every combination."""
    entries: dict[str, Artist] = {
        platform_name(str(platform)): Line2D([], [], color=platform_colour(str(platform)))
        for platform in lines["platform"].unique()
    }
    entries["accounts (top, solid)"] = Line2D([], [], color=MUTED)
    entries["monthly active users (top, dashed)"] = Line2D([], [], color=MUTED, linestyle="--")
    entries["active share (bottom)"] = Line2D([], [], color=MUTED, linewidth=2.4)
    return entries


def _coverage_notes(
    texts: dict[tuple[str, str, str, str], str], shares: dict[str, str]
) -> list[str]:
    """One note per platform: coverage of both measures (once when equal), then the share."""
    notes = []
    for platform in dict.fromkeys(key[1] for key in texts):
        accounts = [text for key, text in texts.items() if key[1] == platform and key[2] != ACTIVE]
        active = [text for key, text in texts.items() if key[1] == platform and key[2] == ACTIVE]
        if accounts == active:
            parts = [f"accounts and MAU {accounts[0]}"] if accounts else []
        else:
            parts = [f"accounts {text}" for text in accounts] + [f"MAU {text}" for text in active]
        if platform in shares:
            parts.append(shares[platform])
        notes.append(f"{platform_name(platform)}: " + ", ".join(parts))
    return notes


def _ratio_notes(ratios: pd.DataFrame) -> dict[str, str]:
    notes = {}
    for (source, platform, _), frame in ratios.groupby(["source", "platform", "target"]):
        last = frame.iloc[int(frame["day"].to_numpy().argmax())]
        peak = frame.iloc[int(frame["value"].to_numpy().argmax())]
        servers = int(last["targets"])
        over = f" over {servers:,} {unit_of(str(source))} with both" if servers > 1 else ""
        notes[str(platform)] = (
            f"active share {last['value']:.0%} on the last day{over} "
            f"(highest {peak['value']:.0%} on {iso(int(peak['day']))})"
        )
    return notes


def _bluesky_note(analysis: Analysis) -> str:
    meta = analysis.series
    if meta.empty or not (meta["metric"] == "users_active").any():
        return ""
    return (
        "Bluesky publishes no monthly active users; its users_active counts accounts that "
        "are not deactivated (not activity), so it is not drawn here"
    )
