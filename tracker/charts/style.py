"""The look every chart shares: size, fonts, colours, number and date formats, captions.

Fonts: the packaged IPAexGothic of `matplotlib-fontja` is registered with the font
manager by file path and used for every text (DejaVu Sans only as a fallback for
the odd glyph it lacks), so Japanese labels render the same on any machine.
`matplotlib_fontja` itself is never imported: importing it rewrites the global
`font.family`, which would change the fonts of a notebook user's own plots.
Styles are applied with `rc_context` only while a figure is built: each text keeps
the font it was created with, so the saved PNG does not depend on global rcParams
and nothing leaks into the caller's matplotlib.

Colours belong to platforms (Mastodon purple, Bluesky blue, ...), so a platform has
the same colour in every chart; unknown platforms get a colour derived from a
checksum of their name, stable across runs (Python's `hash` is salted).
"""

from __future__ import annotations

import contextlib
import importlib.util
import textwrap
import zlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC
from functools import cache
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.dates as mdates
import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib import font_manager
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, PercentFormatter

SIZE = (12.0, 6.75)
"""Inches: 16:9, readable on a laptop screen and in a README at 120 dpi."""
DPI = 120
JAPANESE_FAMILY = "IPAexGothic"
FONT_FILE = "ipaexg.ttf"
CAPTION_WIDTH = 190
"""Characters per caption line at 8 pt across the 12-inch figure."""
CAPTION_POINTS = 8.0
LEGEND_COLUMNS = 6
LEGEND_ROW_POINTS = 15.0

INK = "#222222"
MUTED = "#6b6b6b"
GRID = "#e4e4e4"
EVENT = "#8a8a8a"
OUTLIER_COLOUR = "#d62728"
STEP_COLOUR = "#e08000"
DECREASE_COLOUR = "#7b1fa2"

PLATFORM_COLOURS = {
    "mastodon": "#563acc",
    "bluesky": "#1185fe",
    "misskey": "#86b300",
    "twitter": "#14171a",
    "x": "#14171a",
    "threads": "#c13584",
    "tumblr": "#17a2b8",
    "mixi": "#e8a317",
    "mixi2": "#9c6b00",
    "lemmy": "#14854f",
    "pleroma": "#d35400",
    "akkoma": "#b185db",
    "gotosocial": "#7f8c8d",
    "countersocial": "#2c3e50",
    "cohost": "#83254f",
    "peertube": "#f1680d",
    "friendica": "#1872a2",
    "firefish": "#f07a5b",
    "sharkey": "#4fb3a1",
}
FALLBACK_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b",
    "#e377c2", "#bcbd22", "#17becf", "#393b79", "#637939",
)  # fmt: skip
PLATFORM_NAMES = {
    "mastodon": "Mastodon",
    "bluesky": "Bluesky",
    "misskey": "Misskey",
    "twitter": "Twitter/X",
    "x": "Twitter/X",
    "threads": "Threads",
    "tumblr": "Tumblr",
    "mixi": "mixi",
    "mixi2": "mixi2",
    "lemmy": "Lemmy",
    "pleroma": "Pleroma",
    "akkoma": "Akkoma",
    "gotosocial": "GoToSocial",
    "countersocial": "CounterSocial",
    "cohost": "Cohost",
    "peertube": "PeerTube",
}

STYLE: dict[str, Any] = {
    "font.family": [JAPANESE_FAMILY, "DejaVu Sans"],
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.titlelocation": "left",
    "axes.titlecolor": INK,
    "axes.labelsize": 9,
    "axes.labelcolor": MUTED,
    "axes.edgecolor": "#9a9a9a",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": GRID,
    "grid.linewidth": 0.8,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "xtick.labelcolor": INK,
    "ytick.labelcolor": INK,
    "legend.frameon": False,
    "legend.fontsize": 8.5,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "lines.linewidth": 1.6,
    "hatch.linewidth": 0.6,
    "axes.unicode_minus": True,
}


@cache
def font_path() -> Path:
    """The packaged Japanese font, registered with matplotlib's font manager once."""
    spec = importlib.util.find_spec("matplotlib_fontja")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("matplotlib-fontja is not installed: pip install matplotlib-fontja")
    path = Path(next(iter(spec.submodule_search_locations))) / "fonts" / FONT_FILE
    font_manager.fontManager.addfont(str(path))
    return path


@contextlib.contextmanager
def styled() -> Iterator[None]:
    """Build figures inside this: texts created here keep the chart fonts and colours."""
    font_path()
    with mpl.rc_context(STYLE):
        yield


def new_figure(title: str, *, size: tuple[float, float] = SIZE) -> Figure:
    """A figure on an Agg canvas (no pyplot), with a headline. Call inside `styled()`."""
    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    figure.get_layout_engine().set(h_pad=0.06, w_pad=0.08, hspace=0.04, wspace=0.03)  # type: ignore[union-attr]
    figure.suptitle(title, x=0.01, ha="left", fontsize=14, color=INK)
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
    rows = -(-len(handles) // LEGEND_COLUMNS)
    text_points = len(lines) * CAPTION_POINTS * 1.45 + (6 if lines else 0)
    legend_points = rows * LEGEND_ROW_POINTS + (4 if rows else 0)
    if not text_points and not legend_points:
        return
    height = (text_points + legend_points + 4) / 72 / figure.get_figheight()
    figure.get_layout_engine().set(rect=(0, height, 1, 1 - height))  # type: ignore[union-attr]
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
            ncols=min(LEGEND_COLUMNS, len(handles)),
            fontsize=8.5,
            handlelength=1.8,
            columnspacing=1.6,
            borderaxespad=0.0,
        )
        legend.set_in_layout(False)


def legend_entries(panels: Sequence[Axes]) -> dict[str, Artist]:
    """The legend entries of all panels, each label once: lines first, then markers."""
    lines: dict[str, Artist] = {}
    marks: dict[str, Artist] = {}
    for axes in panels:
        for handle, label in zip(*axes.get_legend_handles_labels(), strict=True):
            (lines if isinstance(handle, Line2D) else marks).setdefault(label, handle)
    return {**lines, **marks}


def message(axes: Axes, text: str) -> None:
    """A centred notice in place of data (what is missing and how to get it)."""
    axes.set_axis_off()
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
    figure = new_figure(title)
    message(figure.add_subplot(), text)
    caption(figure, note)
    return figure


def platform_colour(platform: str) -> str:
    known = PLATFORM_COLOURS.get(platform.lower())
    if known is not None:
        return known
    return FALLBACK_COLOURS[zlib.crc32(platform.lower().encode()) % len(FALLBACK_COLOURS)]


def platform_name(platform: str) -> str:
    return PLATFORM_NAMES.get(platform.lower(), platform)


def shade(colour: str, amount: float) -> tuple[float, float, float]:
    """The colour mixed with white (`amount` 0..1 of white): lighter lines of a family."""
    red, green, blue = mpl.colors.to_rgb(colour)
    return (
        red + (1 - red) * amount,
        green + (1 - green) * amount,
        blue + (1 - blue) * amount,
    )


def compact(value: float, _position: object = None) -> str:
    """12,345 / 123k / 1.2M / 3.4B: thousands separators, M and k once numbers are large."""
    size = abs(value)
    if size >= 1e9:
        text = f"{value / 1e9:,.1f}B"
    elif size >= 1e6:
        text = f"{value / 1e6:,.2f}".rstrip("0").rstrip(".") + "M"
    elif size >= 1e5:
        text = f"{value / 1e3:,.0f}k"
    else:
        text = f"{value:,.0f}" if size >= 1 or size == 0 else f"{value:,.2g}"
    return text.replace("-", "\N{MINUS SIGN}")


def signed(value: float) -> str:
    """A change with its sign: +712k, −45,799."""
    return ("+" if value > 0 else "") + compact(value)


def count_axis(axes: Axes, label: str) -> None:
    axes.yaxis.set_major_formatter(FuncFormatter(compact))
    axes.set_ylabel(label)


def percent_axis(axes: Axes, label: str) -> None:
    axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    axes.set_ylabel(label)


def date_axis(axes: Axes) -> None:
    """Concise UTC dates (years on the first tick of each year, months in between)."""
    locator = mdates.AutoDateLocator(tz=UTC, minticks=4, maxticks=10)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))


def dates(days: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Day numbers (days since 1970-01-01) as matplotlib date numbers, UTC."""
    values = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    return np.asarray(mdates.date2num(values), dtype=np.float64)


def log_if_wide(axes: Axes, maxima: Sequence[float]) -> bool:
    """Log scale when the lines of one panel differ by more than 50 times: otherwise the
    small platforms are flat lines on the floor."""
    positive = [value for value in maxima if value > 0]
    if len(positive) > 1 and max(positive) / min(positive) > 50:
        axes.set_yscale("log")
        axes.yaxis.set_major_formatter(FuncFormatter(compact))
        axes.yaxis.set_minor_formatter(FuncFormatter(lambda *_: ""))
        return True
    return False


def draw_line(
    axes: Axes,
    frame: pd.DataFrame,
    label: str,
    colour: str | tuple[float, float, float],
    *,
    linestyle: str = "-",
    linewidth: float = 1.6,
    gap_days: int = 31,
) -> None:
    """One series of `day`/`value` rows (optional `stale`), broken across long gaps.

    Stale days (values carried forward) stay on the line but drawn light, so an
    outage is visible and not mistaken for a flat week. A series of one or two
    points is drawn as markers: a line needs two points to be seen.
    """
    frame = frame.sort_values("day")
    day = frame["day"].to_numpy(dtype=np.int64)
    value = frame["value"].to_numpy(dtype=np.float64)
    breaks = np.flatnonzero(np.diff(day) > gap_days) + 1
    x = np.insert(dates(day), breaks, np.nan)
    y = np.insert(value, breaks, np.nan)
    marker = "o" if len(frame) <= 2 else None
    if "stale" in frame.columns and bool(frame["stale"].any()):
        stale = np.insert(frame["stale"].to_numpy(dtype=bool), breaks, False)
        axes.plot(x, y, color=colour, alpha=0.35, linestyle=linestyle, linewidth=linewidth)
        fresh = np.where(stale, np.nan, y)
        axes.plot(x, fresh, color=colour, linestyle=linestyle, linewidth=linewidth, label=label)
        alone = np.isfinite(fresh) & ~np.isfinite(np.r_[np.nan, fresh[:-1]])
        alone &= ~np.isfinite(np.r_[fresh[1:], np.nan])
        axes.plot(x[alone], fresh[alone], "o", color=colour, markersize=2.5)
    else:
        axes.plot(
            x, y, color=colour, linestyle=linestyle, linewidth=linewidth, label=label, marker=marker
        )


def legend_outside(axes: Axes, **options: Any) -> None:
    """Legend to the right of the panel, off the data."""
    handles, labels = axes.get_legend_handles_labels()
    if handles:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **options)


def legend_inside(axes: Axes, **options: Any) -> None:
    """Legend in the upper left corner, on a white ground: where growth curves are not."""
    handles, _ = axes.get_legend_handles_labels()
    if handles:
        axes.legend(loc="upper left", frameon=True, framealpha=0.85, edgecolor="none", **options)


def owner(axes: Axes) -> Figure:
    """The top-level figure an Axes is drawn on (plot functions return it)."""
    figure: Figure | SubFigure | None = axes.get_figure()
    while isinstance(figure, SubFigure):
        figure = figure.figure  # type: ignore[assignment]
    if not isinstance(figure, Figure):
        raise ValueError("the axes belongs to no figure")
    return figure
