"""The charts draw the same Bluesky network total as summary.json: the relay's own series
(issue 10, item 1), with the relay's flags and the waves of that total."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.analysis.relay_rows import END, RELAY, active_accounts
from tests.analysis.test_network_totals import analysed
from tracker.analysis.conventions import day_number
from tracker.analysis.pipeline import Analysis
from tracker.charts.data import line_series, network_lines, weekly_lines
from tracker.config import AnalysisSettings
from tracker.report.summary import total_waves


@pytest.fixture(scope="module")
def analysis(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    return analysed(Path(tmp_path_factory.mktemp("relay")))


def test_network_line_of_bluesky_is_the_summarys_total(analysis: Analysis) -> None:
    lines = network_lines(analysis, ["users_total"])
    line = lines[lines["source"] == "bluesky"]
    assert set(line["target"]) == {RELAY}  # labelled with the relay it comes from
    totals = analysis.totals
    total = totals[(totals["source"] == "bluesky") & (totals["metric"] == "users_total")]
    assert line.set_index("day")["value"].to_dict() == (
        total.set_index("day")["value"].astype(float).to_dict()
    )
    assert line.set_index("day")["value"][day_number(END)] == active_accounts(END)
    [relay_id] = line_series(analysis, line)  # the relay's flags belong on the line
    assert analysis.series.loc[relay_id, "target"] == RELAY


def test_weekly_bars_of_bluesky_are_the_weekly_total_its_waves_come_from(
    analysis: Analysis,
) -> None:
    bars = weekly_lines(analysis, ["users_total"])
    bars = bars[bars["source"] == "bluesky"].set_index("week")["change"].dropna()
    weekly = analysis.weekly_totals
    weekly = weekly[(weekly["source"] == "bluesky") & (weekly["metric"] == "users_total")]
    assert bars.to_dict() == weekly.set_index("week")["change"].dropna().to_dict()
    [wave] = total_waves(analysis, AnalysisSettings())[("bluesky", "bluesky", "users_total")]
    assert float(np.max(bars.to_numpy())) == wave.peak_change == 2170
