"""The look every chart shares: fonts, colours, number and date formats, lines and marks.

Fonts: the packaged IPAexGothic of `matplotlib-fontja` is registered with the font
manager by file path and used for every text (DejaVu Sans only as a fallback for
the odd glyph it lacks), so Japanese labels render the same on any machine.
`matplotlib_fontja` itself is never imported: importing it rewrites the global
`font.family`, which would change the fonts of a notebook user's own plots.
Styles are applied with `rc_context` only while a figure is built: each text keeps
the font it was created with, so the saved PNG does not depend on global rcParams
and nothing leaks into the caller's matplotlib.

Colours belong to platforms (Mastodon purple, Bluesky blue, ...), so a platform has
the same colour in every chart. The collector that reports a platform declares its
colour and display name (`tracker.catalogue`); unknown platforms get a colour derived
from a checksum of their name, stable across runs (Python's `hash` is salted).
"""

from __future__ import annotations

import contextlib
import importlib.util
import zlib
from collections.abc import Iterator, Sequence
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
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from tracker.catalogue import platform_looks

JAPANESE_FAMILY = "IPAexGothic"
FONT_FILE = "ipaexg.ttf"
MIN_SPAN_DAYS = 14

INK = "#222222"
MUTED = "#6b6b6b"
GRID = "#e4e4e4"
EVENT = "#8a8a8a"
OUTLIER_COLOUR = "#d62728"
STEP_COLOUR = "#e08000"
DECREASE_COLOUR = "#7b1fa2"

FALLBACK_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#bcbd22")
"""For a platform no collector gives a colour: picked by its name, so stable across charts."""

STYLE: dict[Any, Any] = {
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


def platform_colour(platform: str) -> str:
    """The colour its collector declares (`tracker.catalogue`), else a stable fallback."""
    look = platform_looks().get(platform.lower())
    if look is not None and look.colour is not None:
        return look.colour
    return FALLBACK_COLOURS[zlib.crc32(platform.lower().encode()) % len(FALLBACK_COLOURS)]


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
    """Concise UTC dates (years on the first tick of each year, months in between).

    Data of less than two weeks is shown on two weeks around it: matplotlib would
    otherwise stretch a single day over years of empty axis.
    """
    low, high = axes.dataLim.intervalx
    if np.isfinite(low) and np.isfinite(high) and high - low < MIN_SPAN_DAYS:
        middle = (low + high) / 2
        axes.set_xlim(middle - MIN_SPAN_DAYS / 2, middle + MIN_SPAN_DAYS / 2)
    locator = mdates.AutoDateLocator(tz=UTC, minticks=4, maxticks=10)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator, tz=UTC)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_formatter(formatter)


def dates(days: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Day numbers (days since 1970-01-01) as matplotlib date numbers, UTC."""
    values = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    return np.asarray(mdates.date2num(values), dtype=np.float64)  # type: ignore[no-untyped-call]


def log_if_wide(axes: Axes, maxima: Sequence[float]) -> bool:
    """Log scale when the lines of one panel differ by more than 50 times: otherwise the
    small platforms are flat lines on the floor."""
    positive = [value for value in maxima if value > 0]
    if len(positive) > 1 and max(positive) / min(positive) > 50:
        log_axis(axes)
        return True
    return False


def log_axis(axes: Axes) -> None:
    """A log y axis labelled 1k, 10k, 100k (no 10^x: readers of a report are not engineers)."""
    axes.set_yscale("log")
    axes.yaxis.set_major_formatter(FuncFormatter(compact))
    axes.yaxis.set_minor_formatter(FuncFormatter(lambda *_: ""))


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


def mark_quality(
    axes: Axes, outliers: pd.DataFrame | None = None, flags: pd.DataFrame | None = None
) -> None:
    """Excluded readings as hollow red circles (day, value); steps and decreases as
    triangles on the line (day, value, kind)."""
    if outliers is not None and not outliers.empty:
        axes.scatter(
            dates(outliers["day"]),
            outliers["value"],
            s=24,
            facecolors="none",
            edgecolors=OUTLIER_COLOUR,
            linewidths=1.0,
            zorder=3,
            label="excluded reading (dropout or spike)",
        )
    if flags is None or flags.empty:
        return
    for kind, marker, colour, label in (
        ("step", "^", STEP_COLOUR, "level shift (not growth)"),
        ("decrease", "v", DECREASE_COLOUR, "counter fell"),
    ):
        chosen = flags[flags["kind"] == kind]
        if not chosen.empty:
            axes.scatter(
                dates(chosen["day"]),
                chosen["value"],
                marker=marker,
                s=30,
                color=colour,
                zorder=4,
                label=label,
            )


def finish_accounts(
    axes: Axes,
    maxima: Sequence[float],
    outliers: pd.DataFrame | None,
    flags: pd.DataFrame | None,
) -> Figure:
    """The common end of a panel of account lines: scale, quality marks, both axes."""
    log = log_if_wide(axes, maxima)
    mark_quality(axes, outliers, flags)
    count_axis(axes, "accounts (log scale)" if log else "accounts")
    date_axis(axes)
    return owner(axes)


def owner(axes: Axes) -> Figure:
    """The top-level figure an Axes is drawn on (plot functions return it)."""
    figure: Figure | SubFigure | None = axes.get_figure()
    while isinstance(figure, SubFigure):
        figure = figure.figure
    if not isinstance(figure, Figure):
        raise ValueError("the axes belongs to no figure")
    return figure
