"""weekly_growth.png: accounts gained per week, and sign-ups where servers publish them.

Two measures, never mixed: the net weekly change of a source's account total
(coverage-neutral: a server joining the crawl adds nothing, re-index steps are
left out) and the weekly sign-ups that servers report themselves (Mastodon's
activity API). Each (source, platform) gets its own panel with its own dates.

A wave is a run of weeks whose growth exceeds k times the median of the weeks
before (`tracker.analysis.events.waves`): its bars are drawn in the platform's
full colour, the other weeks in a light tint, so the waves stand out without a
legend lookup; the largest waves' peaks are labelled with their value (and the
largest week in grey when it is not a wave: a surge without enough weeks before
it to compare with is still worth reading). Weeks
whose total carried missing values forward are hatched and left out of waves.
Events shade the week they fall in, the bar a reader looks for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from tracker.analysis.events import Wave, waves
from tracker.analysis.pipeline import Analysis
from tracker.catalogue import platform_name
from tracker.charts.base import Chart
from tracker.charts.data import (
    by_source,
    describe,
    iso,
    ordered_sources,
    span_text,
    weekly_lines,
)
from tracker.charts.figure import caption, empty_chart, finish, grid, new_figure
from tracker.charts.markers import label_events, shade_weeks
from tracker.charts.style import (
    EVENT,
    INK,
    MUTED,
    count_axis,
    date_axis,
    dates,
    owner,
    platform_colour,
    shade,
    signed,
    styled,
)
from tracker.model import Event

NAME = "weekly_growth.png"
TITLE = "New accounts per week: migration waves around events"
ACCOUNTS = "users_total"
SIGNUPS = "registrations"
MAX_PANELS = 6
LABELLED_WAVES = 3
WaveKey = tuple[str, str, str]


@dataclass(frozen=True)
class Panel:
    source: str
    platform: str
    metric: str
    weeks: pd.DataFrame  # week, value (the bar), stale
    note: str

    @property
    def key(self) -> WaveKey:
        return (self.source, self.platform, self.metric)


def plot_weekly(axes: Axes, weeks: pd.DataFrame, colour: str, found: Sequence[Wave] = ()) -> Figure:
    """Bars of `weeks` (week = Monday's day number, value, stale), waves in full colour."""
    weeks = weeks.dropna(subset=["value"]).sort_values("week")
    week = weeks["week"].to_numpy(dtype=np.int64)
    value = weeks["value"].to_numpy(dtype=np.float64)
    stale = weeks["stale"].to_numpy(dtype=bool)
    in_wave = np.zeros(len(week), dtype=bool)
    for wave in found:
        in_wave |= (week >= wave.start) & (week <= wave.end)
    left = dates(week) + 0.5
    light = shade(colour, 0.55)
    fresh = ~stale
    bars(axes, left[fresh], value[fresh], [colour if hot else light for hot in in_wave[fresh]])
    hatched = bars(axes, left[stale], value[stale], [shade(colour, 0.85)] * int(stale.sum()))
    hatched.set_hatch("////")
    hatched.set_edgecolor(shade(colour, 0.3))
    axes.axhline(0, color=MUTED, linewidth=0.8)
    peaks = [(w.peak_week, w.peak_change, INK) for w in _largest(found)]
    if len(value):
        top = int(np.argmax(value))
        if all(int(week[top]) != labelled for labelled, _, _ in peaks):
            peaks.append((int(week[top]), float(value[top]), MUTED))
    for peak_week, peak, ink in peaks:
        axes.annotate(
            signed(peak),
            (float(dates([peak_week])[0]) + 3.5, peak),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=7.5,
            color=ink,
        )
    low, high = axes.get_ylim()
    axes.set_ylim(low, high + (high - low) * 0.3)  # room for the peak labels
    date_axis(axes)
    return owner(axes)


def bars(
    axes: Axes,
    left: npt.NDArray[np.float64],
    heights: npt.NDArray[np.float64],
    faces: Sequence[str | tuple[float, float, float]],
) -> PolyCollection:
    """Weekly bars (six days wide, from `left`) as one collection: hundreds of weeks
    as separate rectangles made a report take seconds longer to draw."""
    verts = np.zeros((len(left), 4, 2))
    verts[:, :, 0] = left[:, None] + np.array([0.0, 0.0, 6.0, 6.0])
    verts[:, 1:3, 1] = heights[:, None]
    collection = PolyCollection(list(verts), facecolors=faces, linewidths=0)
    axes.add_collection(collection, autolim=True)
    axes.autoscale_view()
    return collection


def _largest(found: Sequence[Wave]) -> list[Wave]:
    return sorted(found, key=lambda wave: wave.peak_change, reverse=True)[:LABELLED_WAVES]


def draw(
    analysis: Analysis,
    events: Sequence[Event],
    found: Mapping[WaveKey, Sequence[Wave]] | None = None,
) -> Chart:
    panels = _panels(analysis)
    if not panels:
        text = (
            "No weekly growth yet: it needs account counts in at least two adjacent ISO "
            "weeks, or weekly sign-ups from servers. Run `tracker collect` on a schedule "
            "(or `tracker import` history) and come back next week."
        )
        note = f"Data: {span_text(analysis)}."
        return empty_chart(NAME, TITLE, text, note)
    shown, hidden = panels[:MAX_PANELS], panels[MAX_PANELS:]
    notes: dict[str, list[str]] = {}
    with styled():
        figure = new_figure(TITLE)
        grid_axes = grid(figure, len(shown), sharex=False)
        for axes, panel in zip(grid_axes, shown, strict=True):
            colour = platform_colour(panel.platform)
            weeks = panel.weeks
            chosen = _waves(panel, found)
            plot_weekly(axes, weeks, colour, chosen)
            measure = "sign-ups" if panel.metric == SIGNUPS else "net new accounts"
            count_axis(axes, "sign-ups / week" if panel.metric == SIGNUPS else "accounts / week")
            axes.set_title(
                f"{platform_name(panel.platform)}: {measure} · "
                f"{describe(panel.source, brief=True)}",
                loc="left",
            )
            shade_weeks(axes, events)
            peaks = _largest(chosen)[:2]
            notes.setdefault(panel.source, []).append(
                f"{platform_name(panel.platform)} {panel.note}"
                + "".join(
                    f", wave {iso(w.start)} to {iso(w.end + 6)} peaking at "
                    f"{signed(w.peak_change)} (week of {iso(w.peak_week)})"
                    for w in peaks
                )
            )
        text = "Weeks are ISO weeks (Monday to Sunday, UTC). " + by_source(notes)
        if hidden:
            text += (
                " Not shown: "
                + ", ".join(f"{p.source} {p.platform} {p.metric}" for p in hidden)
                + "."
            )
        caption(figure, text, _legend())
        label_events(figure, grid_axes, events)
    page = (
        "Bars: accounts gained per week, as the net change of each source's account total "
        "(servers joining or leaving the crawl add nothing; re-index steps are excluded), "
        "and sign-ups per week where servers report them. Full-colour bars are waves: "
        "weeks above 3 times the median of the 8 weeks before (at least 4 of them with "
        "data); the largest week is labelled in grey when it is not a wave. Hatched weeks had "
        "carried-forward values and are not used for waves. Grey bands: the week of each "
        f"event. {text}"
    )
    return Chart(NAME, TITLE, page, finish(figure))


def _panels(analysis: Analysis) -> list[Panel]:
    panels: list[Panel] = []
    lines = weekly_lines(analysis, [ACCOUNTS])
    for (source, platform, target), frame in lines.groupby(
        ["source", "platform", "target"], sort=False
    ):
        usable = frame.dropna(subset=["change"])
        if len(usable) < 2:
            continue
        weeks = usable[["week", "stale"]].assign(value=usable["change"].to_numpy())
        where = f" ({target})" if target else ""
        note = f"net change of accounts{where} over {len(usable):,} weeks"
        panels.append(Panel(str(source), str(platform), ACCOUNTS, weeks, note))
    period = analysis.period_totals
    if not period.empty:
        signups = period[period["metric"] == SIGNUPS]
        for (source, platform), frame in signups.groupby(["source", "platform"], sort=False):
            if len(frame) < 2:
                continue
            weeks = frame[["week", "value"]].assign(stale=~frame["complete"].to_numpy(bool))
            most = int(frame["targets"].max())
            note = f"sign-ups reported by up to {most:,} servers over {len(frame):,} weeks"
            panels.append(Panel(str(source), str(platform), SIGNUPS, weeks, note))
    if not panels:
        return []
    starts = pd.DataFrame(
        {"source": [p.source for p in panels], "day": [p.weeks["week"].min() for p in panels]}
    )
    order = ordered_sources(starts)

    def rank(panel: Panel) -> tuple[int, int, float]:
        size = float(np.nanmax(np.abs(panel.weeks["value"].to_numpy(dtype=np.float64))))
        return (order.index(panel.source), 0 if panel.metric == SIGNUPS else 1, -size)

    return sorted(panels, key=rank)


def _waves(panel: Panel, found: Mapping[WaveKey, Sequence[Wave]] | None) -> list[Wave]:
    if found is not None:
        return list(found.get(panel.key, ()))
    weeks = panel.weeks.sort_values("week")
    return waves(
        weeks["week"].to_numpy(dtype=np.int64),
        weeks["value"].to_numpy(dtype=np.float64),
        ignore=weeks["stale"].to_numpy(dtype=bool),
    )


def _legend() -> dict[str, Artist]:
    ordinary, hot = shade(MUTED, 0.55), MUTED
    return {
        "ordinary week (light)": Patch(color=ordinary),
        "wave week (full colour, peak labelled)": Patch(color=hot),
        "stale week (not used for waves)": Patch(
            facecolor=shade(MUTED, 0.85), hatch="////", edgecolor=shade(MUTED, 0.3)
        ),
        "week of an event": Patch(color=EVENT, alpha=0.14),
    }
