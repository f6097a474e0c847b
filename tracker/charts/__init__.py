"""The report's charts: PNG figures drawn from an `Analysis` with matplotlib.

Every figure is a `matplotlib.figure.Figure` on an Agg canvas, built without
pyplot, so drawing a report leaves no global figure state behind and works on a
server without a display. Each chart module has plot functions that take
DataFrames and an Axes and return the Figure (for the notebook), and a `draw`
that shapes an `Analysis` into a finished chart. A chart without data still
renders, saying what is missing and how to get it.

A chart that fails is replaced by a figure saying so, and the error is logged:
one broken chart must not cost the cron user the whole report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import pandas as pd

from tracker.analysis.events import Wave
from tracker.analysis.pipeline import Analysis, Keep
from tracker.analysis.totals import AGGREGATE_METRIC
from tracker.charts import (
    active,
    compare,
    growth,
    japan,
    network,
    overview,
    quality,
    share,
    signups,
)
from tracker.charts.base import Chart
from tracker.charts.figure import empty_figure
from tracker.charts.style import styled
from tracker.config import ReportSettings
from tracker.model import Event

log = logging.getLogger(__name__)

CHART_NAMES = (
    overview.NAME,
    growth.NAME,
    signups.NAME,
    active.NAME,
    share.NAME,
    japan.NAME,
    network.NAME,
    compare.NAME,
    quality.NAME,
)
"""The files `draw_all` makes, in reading order (a report folder holds these)."""

WaveKey = tuple[str, str, str]


def draw_all(
    analysis: Analysis,
    events: Sequence[Event],
    report: ReportSettings,
    waves: Mapping[WaveKey, Sequence[Wave]] | None = None,
) -> list[Chart]:
    """Every chart of the report, in reading order.

    `waves` are keyed by the (source, platform, metric) of a weekly total; when None,
    they are computed with the default rule (`tracker.analysis.events.waves`).
    """
    steps: list[tuple[str, str, Callable[[], Chart]]] = [
        (overview.NAME, overview.TITLE, lambda: overview.draw(analysis, events)),
        (growth.NAME, growth.TITLE, lambda: growth.draw(analysis, events, waves)),
        (signups.NAME, signups.TITLE, lambda: signups.draw(analysis, events)),
        (active.NAME, active.TITLE, lambda: active.draw(analysis, events)),
        (share.NAME, share.TITLE, lambda: share.draw(analysis, events)),
        (japan.NAME, japan.TITLE, lambda: japan.draw(analysis, events, report)),
        (network.NAME, network.TITLE, lambda: network.draw(analysis, events)),
        (compare.NAME, compare.TITLE, lambda: compare.draw(analysis, events)),
        (quality.NAME, quality.TITLE, lambda: quality.draw(analysis)),
    ]
    return [_safely(name, title, step) for name, title, step in steps]


def _safely(name: str, title: str, step: Callable[[], Chart]) -> Chart:
    try:
        return step()
    except Exception as exc:
        log.exception("chart %s failed", name)
        text = f"This chart could not be drawn ({type(exc).__name__}: {exc}). Please report it."
        with styled():
            return Chart(name, title, text, empty_figure(title, text))


def keep_for(report: ReportSettings) -> Keep:
    """Which series a big database keeps for the charts (`analyse(..., keep=...)`).

    Network totals cover every series anyway; the charts need daily values only for
    the named Japanese servers, aggregate targets (relays), sources with a single
    target (their line is that series), per-period series (page views, sign-ups)
    and the `top_targets` largest targets of each source and platform.
    """

    def keep(listing: pd.DataFrame) -> pd.Series[bool]:
        chosen = listing["target"].isin(report.japan) | (listing["period"] != "")
        targets = listing.groupby(["source", "platform"])["target"].transform("nunique")
        chosen |= targets <= 1
        names = list(zip(listing["source"], listing["target"], strict=True))
        counting = listing[listing["metric"] == AGGREGATE_METRIC]
        aggregate = set(zip(counting["source"], counting["target"], strict=True))
        accounts = listing[listing["metric"] == "users_total"]
        largest = (
            accounts.sort_values("last_value", ascending=False)
            .groupby(["source", "platform"])
            .head(report.top_targets)
        )
        wanted = aggregate | set(zip(largest["source"], largest["target"], strict=True))
        chosen |= pd.Series([name in wanted for name in names], index=listing.index)
        return chosen.astype(bool)

    return keep


__all__ = ["CHART_NAMES", "Chart", "draw_all", "keep_for"]
