"""Figures of the report: size, headline, panels, the footer (legend, sources and
coverage), notices in place of data, and the final layout.

The footer band is reserved out of the constrained layout rather than laid out
with it: matplotlib stacks neither an outside legend nor a multi-line
`supxlabel` under the panels reliably, and a footer that runs into the tick
labels is unreadable. A figure's layout is computed once more at the end and
kept (`finish`), so the saved PNG is exactly what the event labels were
measured on.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.lines import Line2D

from tracker.charts.base import Chart
from tracker.charts.style import INK, MUTED, styled

SIZE = (12.0, 6.75)
"""Inches: 16:9, readable on a laptop screen and in a README at 120 dpi."""
DPI = 120
CAPTION_WIDTH = 190
"""Characters per caption line at 8 pt across the 12-inch figure."""
CAPTION_POINTS = 8.0
LEGEND_CHARS = 190
LEGEND_ROW_POINTS = 15.0


def new_figure(title: str, *, size: tuple[float, float] = SIZE) -> Figure:
    """A figure on an Agg canvas (no pyplot), with a headline. Call inside `styled()`."""
    layout = ConstrainedLayoutEngine(h_pad=0.06, w_pad=0.08, hspace=0.04, wspace=0.03)
    figure = Figure(figsize=size, dpi=DPI, layout=layout)
    FigureCanvasAgg(figure)
    figure.suptitle(title, x=0.01, ha="left", fontsize=14, color=INK)
    return figure


def finish(figure: Figure) -> Figure:
    """Lay the figure out once more and keep that layout.

    Event labels were placed on measured panel widths; a layout recomputed when the
    PNG is saved could move the panels under them. Kept, the layout is the same at
    any dpi (it is in inches), and saving skips a second layout pass.
    """
    layout = figure.get_layout_engine()
    if layout is not None:
        layout.execute(figure)
        figure.set_layout_engine("none")
    return figure


def grid(figure: Figure, panels: int, *, sharex: bool = True) -> list[Axes]:
    """Up to three panels stacked; more side by side in two columns."""
    columns = 1 if panels <= 3 else 2
    rows = -(-panels // columns)
    axes = figure.subplots(rows, columns, sharex=sharex, squeeze=False).ravel().tolist()
    for extra in axes[panels:]:
        extra.remove()
    return axes[:panels]


def caption(figure: Figure, text: str, handles: Mapping[str, Artist] | None = None) -> None:
    """The footer: one legend for all panels, and the source and coverage lines.

    The footer band is kept out of the layout (`rect`), so the panels are laid out
    above it and nothing runs into it; the legend sits under the panels, off the
    data, each label once (lines first, then markers).
    """
    lines = textwrap.wrap(text, CAPTION_WIDTH) if text else []
    handles = handles or {}
    columns = _legend_columns(list(handles))
    rows = -(-len(handles) // columns) if handles else 0
    text_points = len(lines) * CAPTION_POINTS * 1.45 + (6 if lines else 0)
    legend_points = rows * LEGEND_ROW_POINTS + (4 if rows else 0)
    if not text_points and not legend_points:
        return
    height = (text_points + legend_points + 4) / 72 / figure.get_figheight()
    layout = figure.get_layout_engine()
    if isinstance(layout, ConstrainedLayoutEngine):
        layout.set(rect=(0, height, 1, 1 - height))
    if lines:
        figure.text(
            0.01,
            0.008,
            "\n".join(lines),
            ha="left",
            va="bottom",
            fontsize=CAPTION_POINTS,
            color=MUTED,
            linespacing=1.45,
        )
    if handles:
        legend = figure.legend(
            list(handles.values()),
            list(handles),
            loc="lower left",
            bbox_to_anchor=(0.005, (text_points + 2) / 72 / figure.get_figheight()),
            ncols=columns,
            fontsize=8.5,
            handlelength=1.8,
            columnspacing=1.6,
            borderaxespad=0.0,
        )
        legend.set_in_layout(False)


def _legend_columns(labels: Sequence[str]) -> int:
    """As many columns as fit in one line of the figure's width (about 200 characters)."""
    for columns in range(len(labels), 1, -1):
        widest = [max(len(label) for label in labels[start::columns]) for start in range(columns)]
        if sum(width + 7 for width in widest) <= LEGEND_CHARS:
            return columns
    return 1


def legend_entries(panels: Sequence[Axes]) -> dict[str, Artist]:
    """The legend entries of all panels, each label once: lines first, then markers."""
    lines: dict[str, Artist] = {}
    marks: dict[str, Artist] = {}
    for axes in panels:
        for handle, label in zip(*axes.get_legend_handles_labels(), strict=True):
            (lines if isinstance(handle, Line2D) else marks).setdefault(label, handle)
    return {**lines, **marks}


def message(axes: Axes, text: str) -> None:
    """A centred notice in place of data (what is missing and how to get it).

    Panels sharing this one's x axis get their date labels back: they may have been
    hidden on the assumption that this panel would show them.
    """
    axes.set_axis_off()
    for other in axes.get_shared_x_axes().get_siblings(axes):
        if other is not axes:
            other.xaxis.set_tick_params(labelbottom=True)
    axes.text(
        0.5,
        0.5,
        "\n".join(textwrap.wrap(text, 90)),
        transform=axes.transAxes,
        ha="center",
        va="center",
        fontsize=12,
        color=MUTED,
        linespacing=1.6,
    )


def empty_figure(title: str, text: str, note: str = "") -> Figure:
    """A whole chart saying why it has nothing to show."""
    with styled():
        figure = new_figure(title)
        message(figure.add_subplot(), text)
        caption(figure, note)
        return finish(figure)


def empty_chart(name: str, title: str, text: str, note: str) -> Chart:
    """A chart with nothing to show: the image and the page caption both say why."""
    return Chart(name, title, f"{text} {note}", empty_figure(title, text, note))


def legend_outside(axes: Axes, **options: Any) -> None:
    """Legend to the right of the panel, off the data."""
    handles, _ = axes.get_legend_handles_labels()
    if handles:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **options)
