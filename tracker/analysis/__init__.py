"""The analysis API: pure functions on DataFrames, shared by the report and the notebook.

Typical use in a notebook::

    from tracker.analysis import Filters, analyse, connect, with_names
    engine = connect()                       # $TRACKER_DB_URL, else the config's database
    result = analyse(engine, Filters(source="joinmastodon"))
    with_names(result.daily, result.series)  # tidy: names joined, days as dates

Conventions (UTC days, ISO weeks labelled by Monday, per-period values summed) are
in `tracker.analysis.conventions`; quality flags in `tracker.analysis.quality`.
The crawl's daily totals per software family, with coverage, are `result.network`
(`tracker.analysis.network`).
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine

from tracker.analysis.conventions import day_date, day_number, timestamps
from tracker.analysis.events import Effect, Wave, flow_effect, level_effect, shares, waves
from tracker.analysis.load import load_observations, load_points, load_series, with_names
from tracker.analysis.network import flagged_series, network_view
from tracker.analysis.pipeline import Analysis, analyse, list_series
from tracker.analysis.quality import QualityRules, flag_points
from tracker.analysis.series import (
    adjusted,
    daily_change,
    daily_values,
    period_sums,
    weekly_values,
)
from tracker.analysis.totals import TotalsAccumulator, period_totals, weekly_totals
from tracker.config import DB_URL_ENV
from tracker.loader import load_config
from tracker.storage.engine import open_database
from tracker.storage.filters import Filters


def connect(config: Path | None = None) -> Engine:
    """The database a notebook should read: `$TRACKER_DB_URL`, else the config's."""
    url = os.environ.get(DB_URL_ENV)
    if url:
        return open_database(url)
    return open_database(load_config(config).database)


__all__ = [
    "Analysis",
    "Effect",
    "Filters",
    "QualityRules",
    "TotalsAccumulator",
    "Wave",
    "adjusted",
    "analyse",
    "connect",
    "daily_change",
    "daily_values",
    "day_date",
    "day_number",
    "flag_points",
    "flagged_series",
    "flow_effect",
    "level_effect",
    "list_series",
    "load_observations",
    "load_points",
    "load_series",
    "network_view",
    "period_sums",
    "period_totals",
    "shares",
    "timestamps",
    "waves",
    "weekly_totals",
    "weekly_values",
    "with_names",
]
