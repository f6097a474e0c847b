"""The analysis finds what the public record shows, on the real series of ../shared/datasets.

Expected figures are computed here from the raw files with plain csv/datetime code,
independently of the analysis under test.
"""

from __future__ import annotations

import csv
import itertools
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine

from tests.conftest import Workspace
from tests.support.datasets import write_csv
from tests.support.payloads import dataset
from tracker.analysis.conventions import day_date, day_number
from tracker.analysis.pipeline import Analysis, analyse
from tracker.config import DEFAULT_EVENTS, AnalysisSettings
from tracker.report.summary import build_summary
from tracker.storage.engine import open_database

JOINMASTODON = "joinmastodon_statistics_daily_2022-09-30_to_2025-10-14.csv"
INSTANCES = "instances_social_totals_3hourly_2022-11-04_to_2022-12-31.csv"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    workspace = Workspace(tmp_path_factory.mktemp("real"))
    workspace.write_config()
    csv_file = write_csv(workspace.root / "real.csv")
    result = workspace.cli("import", str(csv_file))
    assert result.returncode == 0, result.stderr
    return open_database(f"sqlite:///{workspace.db}")


@pytest.fixture(scope="module")
def analysis(engine: Engine) -> Analysis:
    return analyse(engine)


@pytest.fixture(scope="module")
def summary(analysis: Analysis) -> dict[str, object]:
    return build_summary(
        analysis, DEFAULT_EVENTS, AnalysisSettings(), datetime(2026, 1, 1, tzinfo=UTC)
    )


def entry(summary: dict[str, object], source: str, target: str, metric: str) -> dict[str, object]:
    [found] = [
        e
        for e in summary["series"]  # type: ignore[attr-defined]
        if (e["source"], e["target"], e["metric"]) == (source, target, metric)
    ]
    return found  # type: ignore[no-any-return]


def read(name: str) -> list[dict[str, str]]:
    with dataset(name).open() as handle:
        return list(csv.DictReader(handle))


def iso_monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def test_official_mau_peaks_in_late_2022_on_the_recorded_day(summary: dict[str, object]) -> None:
    rows = read(JOINMASTODON)
    top = max(rows, key=lambda row: int(row["active_user_count"]))
    peak = entry(summary, "joinmastodon", "joinmastodon", "users_active_month")["peak"]
    assert peak == {"date": top["date"], "value": int(top["active_user_count"])}
    assert top["date"].startswith("2022-11")  # the public record: late 2022


def test_largest_account_growth_is_the_week_the_record_shows(summary: dict[str, object]) -> None:
    rows = read(JOINMASTODON)
    last_of_week: dict[date, int] = {}
    for row in rows:  # rows are in date order: the last one of each ISO week wins
        last_of_week[iso_monday(date.fromisoformat(row["date"]))] = int(row["user_count"])
    weeks = sorted(last_of_week)
    gains = {
        week: last_of_week[week] - last_of_week[previous]
        for previous, week in itertools.pairwise(weeks)
        if (week - previous).days == 7 and date(2022, 10, 27) <= week <= date(2022, 12, 31)
    }
    best = max(gains, key=gains.__getitem__)
    gain = entry(summary, "joinmastodon", "joinmastodon", "users_total")["largest_weekly_gain"]
    assert gain == {"week": best.isoformat(), "value": gains[best]}
    assert best == date(2022, 11, 7)


def test_instances_social_reindex_is_a_step_not_growth(
    analysis: Analysis, summary: dict[str, object]
) -> None:
    by_day: dict[str, list[int]] = defaultdict(list)
    for row in read(INSTANCES):
        by_day[row["updated_at"][:10]].append(int(row["users"]))
    median = {day: sorted(v)[len(v) // 2] for day, v in by_day.items()}
    # The record: about +1.2M from one day to the next, against ~0.1M on a normal day.
    assert median["2022-11-22"] - median["2022-11-20"] > 1_100_000
    assert median["2022-11-20"] - median["2022-11-19"] < 200_000
    found = entry(summary, "instances_social", "all-instances", "users_total")
    steps = [flag for flag in found["flags"] if flag["kind"] == "step"]  # type: ignore[attr-defined]
    assert [flag["date"] for flag in steps] == ["2022-11-21"]
    assert found["largest_weekly_gain"]["week"] != "2022-11-21"  # type: ignore[index]
    # The week of the re-index reports its organic growth, at least the jump less than raw.
    series_id = analysis.series.index[
        (analysis.series["source"] == "instances_social")
        & (analysis.series["metric"] == "users_total")
    ][0]
    weekly = analysis.weekly[analysis.weekly["series_id"] == series_id].set_index("week")
    week = day_number(date(2022, 11, 21))
    raw_change = weekly.loc[week, "value"] - weekly.loc[week - 7, "value"]
    assert weekly.loc[week, "change"] < raw_change - 900_000


def test_single_row_dropouts_are_flagged(analysis: Analysis) -> None:
    rows = read(INSTANCES)
    values = [int(row["users"]) for row in rows]
    # The record: single rows drop by 1-3M when a big instance misses one crawl.
    dropped = {
        int(
            datetime.strptime(rows[i]["updated_at"], "%Y-%m-%d %H:%M")
            .replace(tzinfo=UTC)
            .timestamp()
        )
        for i in range(1, len(rows) - 1)
        if values[i] < min(values[i - 1], values[i + 1]) - 1_000_000
    }
    assert len(dropped) >= 3
    series = analysis.series
    users = series.index[
        (series["source"] == "instances_social") & (series["metric"] == "users_total")
    ]
    outliers = analysis.outliers[analysis.outliers["series_id"].isin(users)]
    flagged = set(outliers.loc[outliers["flag"] == "dropout", "t"])
    assert dropped <= flagged


def test_gaps_are_carried_briefly_and_marked_stale(analysis: Analysis) -> None:
    missing = [date(2022, 12, 7), date(2022, 12, 8)]  # the official series has no rows
    recorded = {row["date"] for row in read(JOINMASTODON)}
    assert not {day.isoformat() for day in missing} & recorded
    totals = analysis.totals
    official = totals[(totals["source"] == "joinmastodon") & (totals["metric"] == "users_total")]
    official = official.set_index("day")
    for day in missing:
        row = official.loc[day_number(day)]
        assert (row["reporting"], row["carried"], bool(row["stale"])) == (0, 1, True)
    daily = analysis.daily.merge(analysis.series, left_on="series_id", right_index=True)
    days = set(daily.loc[daily["source"] == "joinmastodon", "day"])
    assert not {day_number(day) for day in missing} & days


def test_event_effect_of_the_takeover_matches_the_raw_series(summary: dict[str, object]) -> None:
    rows = {row["date"]: int(row["user_count"]) for row in read(JOINMASTODON)}
    [takeover] = [e for e in summary["events"] if e["date"] == "2022-10-27"]  # type: ignore[attr-defined]
    [effect] = [
        e
        for e in takeover["effects"]
        if (e["source"], e["target"], e["metric"])
        == ("joinmastodon", "joinmastodon", "users_total")
    ]
    observed = rows["2022-11-09"] - rows["2022-10-26"]  # the 14 days from the event on
    assert effect["observed"] == observed
    assert effect["ratio"] > 10  # far above the trend of the four weeks before
    assert abs(effect["excess"] - (observed - effect["expected"])) <= 1


def test_nothing_is_lost_between_the_files_and_the_analysis(analysis: Analysis) -> None:
    counts: dict[str, set[str]] = defaultdict(set)
    for row in read(JOINMASTODON):
        counts["joinmastodon"].add(row["date"])
    series = analysis.series
    official = series.index[
        (series["source"] == "joinmastodon") & (series["metric"] == "users_total")
    ]
    days = analysis.daily.loc[analysis.daily["series_id"].isin(official), "day"]
    outliers = analysis.outliers.loc[analysis.outliers["series_id"].isin(official), "t"]
    kept = {day_date(int(d)).isoformat() for d in days}
    set_aside = {day_date(int(t) // 86400).isoformat() for t in outliers}
    # Every recorded day is either a daily value or a flagged reading, never dropped silently.
    assert kept | set_aside == counts["joinmastodon"]
    assert not kept & set_aside
    assert 0 < len(set_aside) < 10
