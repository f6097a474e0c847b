"""overview.png: accounts per platform over time, one panel per source.

Each source counts a different "Mastodon" (the official statistics only know the
servers that report to joinmastodon.org, the old bot crawled every instance it
found), so sources get their own panels and are compared by eye, never added.
Within a source, one line per platform. Each panel spans its own source's dates:
on one shared axis a two-month import (instances.social) would be a vertical
smear and the events a pile of labels.

Readings the analysis excluded (dropouts, spikes) are drawn as hollow red circles
where the line is that one series, so a reader sees what was left out and why the
line does not follow it; steps (re-indexes) and falls of counters are marked on
the line the same way. Days whose total carries a missing server's last value
forward are drawn light.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from tracker.analysis.pipeline import Analysis
from tracker.catalogue import platform_name
from tracker.charts.base import Chart
from tracker.charts.data import (
    by_source,
    coverage,
    describe,
    flag_points,
    line_label,
    line_series,
    network_lines,
    ordered_sources,
    outlier_points,
    span_text,
    targets_of,
    unit_of,
)
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
    draw_line,
    finish_accounts,
    platform_colour,
    styled,
)
from tracker.model import Event

NAME = "overview.png"
TITLE = "Accounts per platform over time, as each source counts them"
METRICS = ("users_total",)
MAX_PANELS = 6
READING = (
    "Light stretches: days on which a missing server's last value was carried forward. "
    "Hollow red circles: readings excluded as dropouts or spikes. "
    "▲ level shift (a re-index, not growth); ▼ a counter that fell. Dates are UTC days."
)


def plot_accounts(
    axes: Axes,
    lines: pd.DataFrame,
    outliers: pd.DataFrame | None = None,
    flags: pd.DataFrame | None = None,
) -> Figure:
    """Draw network lines (`data.LINE_COLUMNS`) of one panel.

    `outliers`: rows of day and value drawn as hollow red circles; `flags`: rows of
    day, value and kind ('step' or 'decrease') drawn as triangles on the line.
    """
    with_source = lines["source"].nunique() > 1
    maxima: list[float] = []
    for (source, platform, target), frame in lines.groupby(
        ["source", "platform", "target"], sort=False
    ):
        label = line_label(str(source), str(platform), str(target), with_source=with_source)
        draw_line(axes, frame, label, platform_colour(str(platform)))
        maxima.append(float(frame["value"].max()))
    return finish_accounts(axes, maxima, outliers, flags)


def draw(analysis: Analysis, events: Sequence[Event]) -> Chart:
    lines = network_lines(analysis, METRICS)
    if lines.empty:
        text = (
            "No account counts yet. Run `tracker collect` (fediverse, joinmastodon, bluesky) "
            "or load history with `tracker import FILE`."
        )
        note = f"Data: {span_text(analysis)}."
        return empty_chart(NAME, TITLE, text, note)
    sources = ordered_sources(lines)
    shown, hidden = sources[:MAX_PANELS], sources[MAX_PANELS:]
    covered = coverage(analysis, lines)
    notes: dict[str, list[str]] = {}
    with styled():
        figure = new_figure(TITLE)
        panels = grid(figure, len(shown), sharex=False)
        for axes, source in zip(panels, shown, strict=True):
            part = lines[lines["source"] == source]
            ids = line_series(analysis, part)
            plot_accounts(axes, part, outlier_points(analysis, ids), flag_points(analysis, ids))
            unit = unit_of(source)
            targets = _targets(analysis, part)
            title = describe(source, brief=len(shown) > 3)
            if targets > 1:
                title += f" · {targets:,} {unit}"
            axes.set_title(title, loc="left")
            event_lines(axes, events)
            notes[source] = [
                f"{platform_name(key[1])} {cover.text(unit)}"
                for key, cover in covered.items()
                if key[0] == source
            ]
        text = f"Data: {span_text(analysis)}. " + by_source(notes)
        if hidden:
            text += " Not shown (too many sources): " + ", ".join(hidden) + "."
        caption(figure, text, legend_entries(panels))
        label_events(figure, panels, events)
    page = (
        "Accounts (users_total) on each platform, one panel per source: each source counts "
        "different servers, so they are compared side by side, never added together. "
        f"{READING} {text}"
    )
    return Chart(NAME, TITLE, page, finish(figure))


def _targets(analysis: Analysis, lines: pd.DataFrame) -> int:
    """How many targets the panel's lines stand for (an aggregate line stands for one)."""
    count = 0
    for (source, platform, target), _ in lines.groupby(["source", "platform", "target"]):
        if target:
            count += 1
        else:
            count += len(targets_of(analysis, str(source), str(platform), "users_total"))
    return count
