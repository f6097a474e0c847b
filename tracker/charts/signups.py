"""signups.png: new accounts per day as the platforms themselves record them.

Sign-ups are counted where they happen, not inferred from a total: the PLC
directory's new did:plc identities per day for each PDS family (Bluesky's own
hosts, third-party PDSes, bridges) and the weekly registrations Mastodon servers
publish (`/api/v1/instance/activity`). A weekly count is drawn as its mean per
day, so both read in the same unit; each source keeps its own panel (they count
different things and are never added together). Without either, the chart says
what is missing and how to get it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from tracker.analysis.pipeline import Analysis
from tracker.catalogue import platform_name
from tracker.charts.base import Chart
from tracker.charts.data import iso, span_text
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
    count_axis,
    date_axis,
    draw_line,
    platform_colour,
    styled,
)
from tracker.model import Event

NAME = "signups.png"
TITLE = "Sign-ups per day, as the platforms record them"
PLC = ("plc", "accounts_created")
REGISTRATIONS = "registrations"
FAMILY_COLOURS = {"bsky": "#0a7aff", "third_party": "#2ca02c", "bridge": "#9467bd"}
FAMILY_NAMES = {
    "bsky": "Bluesky's own PDS hosts",
    "third_party": "third-party PDSes",
    "bridge": "bridges (e.g. Bridgy Fed)",
}


def plc_lines(analysis: Analysis) -> pd.DataFrame:
    """New identities per day and PDS family: target, day, value."""
    daily, meta = analysis.period_daily, analysis.series
    if daily.empty or meta.empty:
        return pd.DataFrame(columns=["target", "day", "value"])
    named = daily.join(meta[["source", "target", "metric", "period"]], on="series_id")
    chosen = named[
        (named["source"] == PLC[0]) & (named["metric"] == PLC[1]) & (named["period"] == "day")
    ]
    summed = chosen.groupby(["target", "day"], as_index=False).agg(value=("value", "sum"))
    return summed.sort_values(["target", "day"]).reset_index(drop=True)


def registration_lines(analysis: Analysis) -> pd.DataFrame:
    """Weekly registrations summed over the servers reporting them, as a mean per day:
    source, platform, day (the Monday), value, targets."""
    weekly = analysis.period_totals
    if weekly.empty:
        return pd.DataFrame(columns=["source", "platform", "day", "value", "targets"])
    chosen = weekly[weekly["metric"] == REGISTRATIONS]
    return pd.DataFrame(
        {
            "source": chosen["source"].to_numpy(),
            "platform": chosen["platform"].to_numpy(),
            "day": chosen["week"].to_numpy(dtype=np.int64),
            "value": chosen["value"].to_numpy(dtype=np.float64) / 7.0,
            "targets": chosen["targets"].to_numpy(dtype=np.int64),
        }
    )


def draw(analysis: Analysis, events: Sequence[Event]) -> Chart:
    plc, registered = plc_lines(analysis), registration_lines(analysis)
    if plc.empty and registered.empty:
        text = (
            "No sign-up counts yet. Run `tracker collect` with the `plc` collector (Bluesky's "
            "new identities per day, from the PLC directory) or the `fediverse` collector "
            "(Mastodon servers' weekly registrations)."
        )
        return empty_chart(NAME, TITLE, text, f"Data: {span_text(analysis)}.")
    notes = []
    with styled():
        figure = new_figure(TITLE)
        panels = int(not plc.empty) + int(not registered.empty)
        axes_list = grid(figure, panels, sharex=False)
        index = 0
        if not plc.empty:
            _plc_panel(axes_list[index], plc, events)
            total = int(plc["value"].sum())
            first, last = iso(int(plc["day"].min())), iso(int(plc["day"].max()))
            notes.append(
                f"PLC directory: {total:,} new did:plc identities from {first} "
                f"to {last}, by the PDS each was created on (identities, "
                "not people; did:web accounts are missing)"
            )
            index += 1
        if not registered.empty:
            _registration_panel(axes_list[index], registered, events)
            most = int(registered["targets"].max())
            notes.append(
                f"Mastodon activity API: weekly registrations reported by up to {most:,} "
                "servers, drawn as their mean per day on the week's Monday (only the servers "
                "that publish them: a floor, not the whole network)"
            )
        text = "; ".join(notes) + ". Dashed lines: the dated events."
        caption(figure, text, legend_entries(axes_list))
        label_events(figure, axes_list[:1], events)
    page = (
        f"New accounts per day where the platforms record them, not inferred from a total. {text}"
    )
    return Chart(NAME, TITLE, page, finish(figure))


def _plc_panel(axes: Axes, lines: pd.DataFrame, events: Sequence[Event]) -> None:
    for target, frame in lines.groupby("target", sort=True):
        name = FAMILY_NAMES.get(str(target), str(target))
        colour = FAMILY_COLOURS.get(str(target), platform_colour(str(target)))
        draw_line(axes, frame, f"Bluesky · {name}", colour, linewidth=1.2, gap_days=2)
    count_axis(axes, "new identities / day")
    axes.set_title("Bluesky: new identities per day · PLC directory", loc="left")
    event_lines(axes, events)
    date_axis(axes)


def _registration_panel(axes: Axes, lines: pd.DataFrame, events: Sequence[Event]) -> None:
    for (source, platform), frame in lines.groupby(["source", "platform"], sort=True):
        label = f"{platform_name(str(platform))} · {source}"
        draw_line(axes, frame, label, platform_colour(str(platform)), gap_days=8)
    count_axis(axes, "sign-ups / day (weekly mean)")
    axes.set_title("Fediverse: weekly registrations reported by servers", loc="left")
    event_lines(axes, events)
    date_axis(axes)
