"""`Chart`: what every chart module returns, and what the report saves and describes."""

from __future__ import annotations

from dataclasses import dataclass

from matplotlib.figure import Figure


@dataclass(frozen=True)
class Chart:
    """One PNG of the report: the file name, a heading, the page caption and the figure.

    `caption` is plain text for the HTML page: what is counted, the sources and their
    coverage, the flags, and how to read the chart. The image carries the source and
    coverage part of it too, so a PNG shared on its own still says where it comes from.
    """

    name: str
    title: str
    caption: str
    figure: Figure
