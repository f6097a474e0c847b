"""Dated events on time axes: thin vertical lines, short labels that never overlap.

Events cluster (three in July 2023), so labels cannot simply sit next to their
lines. Each label goes into a row above the panel, on a stem rising from its
line: the lowest row where it touches no label already placed and its stem
crosses none, measured in rendered points after the layout is settled (so it
holds for any date range and panel width). Labels near the right edge end at
their stem instead of starting there, so they never push the layout wider. Long
labels are shortened at a word boundary; the full text stays in the page caption.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.text import Annotation

from tracker.charts.style import EVENT, INK, dates
from tracker.model import Event

LABEL_CHARS = 20
ROW_POINTS = 11.0
GAP_POINTS = 6.0
MAX_ROWS = 5
FONT_SIZE = 7.5


def short(label: str, limit: int = LABEL_CHARS) -> str:
    """A few words for the chart: the known abbreviation, else the label without
    parentheses cut at a word boundary to `limit` characters."""
    if label in SHORT_LABELS:
        return SHORT_LABELS[label]
    text = re.sub(r"\s*\([^)]*\)", "", label).strip() or label.strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:-")
    return (cut or text[: limit - 1]) + "…"


SHORT_LABELS = {
    "Musk takes over Twitter": "Musk takeover",
    "Paid verification (Twitter Blue) launches": "Paid checkmarks",
    "Twitter Blue relaunches": "Blue relaunch",
    "Rate limits on reading": "Rate limits",
    "Threads launches": "Threads opens",
    "Twitter rebrands as X": "Rebrand to X",
    "Bluesky opens without invites": "Bluesky opens",
    "X banned in Brazil": "X banned in Brazil",
    "US election": "US election",
}
"""Abbreviations of the default events (`tracker.config.DEFAULT_EVENTS`)."""


def visible(events: Sequence[Event], axes: Axes) -> list[tuple[float, Event]]:
    """Events inside the dates the panel has data for (not its margins), in date order."""
    low, high = sorted(axes.dataLim.intervalx)
    if not np.isfinite(low) or not np.isfinite(high):
        return []
    found = [(float(dates([day_of(event.date)])[0]), event) for event in events]
    return sorted(((x, event) for x, event in found if low <= x <= high), key=lambda item: item[0])


def day_of(moment: date) -> int:
    return (moment - date(1970, 1, 1)).days


def event_lines(axes: Axes, events: Sequence[Event]) -> None:
    """A thin dashed line at each event inside the panel's date range."""
    for x, _ in visible(events, axes):
        axes.axvline(x, color=EVENT, linewidth=0.8, linestyle=(0, (3, 2)), zorder=1.5)


def shade_weeks(axes: Axes, events: Sequence[Event]) -> None:
    """Shade the ISO week holding each event (for weekly bars: the bar it falls in)."""
    for x, event in visible(events, axes):
        monday = day_of(event.date) - event.date.weekday()
        start = float(dates([monday])[0])
        axes.axvspan(start, start + 7, color=EVENT, alpha=0.14, linewidth=0, zorder=0.5)
        del x


def label_events(figure: Figure, top_axes: Sequence[Axes], events: Sequence[Event]) -> int:
    """Label the events above each of `top_axes`; returns the most rows used.

    Call once everything else is drawn: the layout is computed first so that
    positions are measured on the final panel widths.
    """
    if not events or not top_axes:
        return 0
    layout = figure.get_layout_engine()
    if layout is not None:
        layout.execute(figure)  # the final panel widths, without drawing anything
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    scale = 72.0 / figure.dpi
    font = FontProperties(size=FONT_SIZE)
    most = 0
    for axes in top_axes:
        box = axes.get_window_extent(renderer)
        low, high = axes.get_xlim()
        width_points = box.width * scale
        rows: list[list[tuple[float, float]]] = []
        placed: list[Annotation] = []
        for x, event in reversed(visible(events, axes)):
            at = (x - low) / (high - low) * width_points
            text = short(event.label)
            extent = renderer.get_text_width_height_descent(text, font, ismath=False)[0] * scale
            right_aligned = at + extent + 2 > width_points
            span = (at - extent - 2, at) if right_aligned else (at, at + extent + 2)
            row = _free_row(rows, span, at)
            placed.append(_label(axes, x, text, row, right_aligned))
        most = max(most, len(rows))
        if placed:
            title = axes.get_title(loc="left")
            axes.set_title(title, loc="left", pad=6 + len(rows) * ROW_POINTS + 4)
    return most


def _free_row(rows: list[list[tuple[float, float]]], span: tuple[float, float], stem: float) -> int:
    """The lowest row where the label fits and its stem crosses no label below it.

    Labels are placed from the latest event to the earliest: a label extends to the
    right of its stem, so the stems of earlier events, placed higher, pass left of
    the labels already placed below them.
    """
    start, end = span

    def fits(taken: list[tuple[float, float]]) -> bool:
        return all(end + GAP_POINTS <= low or start >= high + GAP_POINTS for low, high in taken)

    def crossed(below: list[list[tuple[float, float]]]) -> bool:
        return any(low <= stem <= high for taken in below for low, high in taken)

    for index in range(min(len(rows) + 1, MAX_ROWS)):
        if index == len(rows):
            rows.append([])
        if fits(rows[index]) and not crossed(rows[:index]):
            rows[index].append(span)
            return index
    for index, taken in enumerate(rows):
        if fits(taken):
            taken.append(span)
            return index
    overlaps = [sum(max(0.0, min(end, b) - max(start, a)) for a, b in taken) for taken in rows]
    best = int(np.argmin(overlaps))
    rows[best].append(span)
    return best


def _label(axes: Axes, x: float, text: str, row: int, right_aligned: bool) -> Annotation:
    rise = 4 + row * ROW_POINTS
    return axes.annotate(
        text,
        xy=(x, 1.0),
        xycoords=axes.get_xaxis_transform(),
        xytext=(0, rise),
        textcoords="offset points",
        ha="right" if right_aligned else "left",
        va="bottom",
        fontsize=FONT_SIZE,
        color=INK,
        annotation_clip=False,
        arrowprops={
            "arrowstyle": "-",
            "color": EVENT,
            "linewidth": 0.8,
            "linestyle": (0, (3, 2)),
            "shrinkA": 0,
            "shrinkB": 0,
            "patchA": None,  # the stem starts at the label's corner: no clipping to compute
            "relpos": (1.0, 0.0) if right_aligned else (0.0, 0.0),
        },
    )
