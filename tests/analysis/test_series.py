"""Daily and weekly conventions: UTC days, ISO weeks labelled by Monday, sums for periods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from tests.analysis.helpers import T0, day, points
from tracker.analysis.quality import flag_points
from tracker.analysis.series import daily_change, daily_values, period_sums, weekly_values


def flagged(frame: pd.DataFrame) -> pd.DataFrame:
    return flag_points(frame, np.ones(len(frame), bool))


def test_daily_value_is_the_last_reading_of_the_utc_day() -> None:
    # Six-hourly readings: 00:00, 06:00, 12:00, 18:00 of each day.
    frame = points([100 + i for i in range(12)], every=timedelta(hours=6))
    daily = daily_values(flagged(frame))
    assert list(daily["day"]) == [day(T0), day(T0) + 1, day(T0) + 2]
    assert list(daily["value"]) == [103, 107, 111]


def test_a_reading_at_23_59_and_one_at_00_00_belong_to_different_days() -> None:
    late = datetime(2022, 11, 6, 23, 59, 59, tzinfo=UTC)
    frame = pd.DataFrame(
        {"series_id": 1, "t": [int(late.timestamp()), int(late.timestamp()) + 1], "value": [5, 9]}
    )
    daily = daily_values(flagged(frame))
    assert list(daily["value"]) == [5, 9]


def test_weeks_are_iso_weeks_labelled_by_monday_and_take_the_last_value() -> None:
    # 21 daily readings from Monday 2022-10-03; the third week misses its last 3 days.
    values = [1000 + 10 * i for i in range(21)]
    frame = points(values).drop(index=[18, 19, 20]).reset_index(drop=True)
    weekly = weekly_values(daily_values(flagged(frame)))
    mondays = [datetime(2022, 10, d, tzinfo=UTC) for d in (3, 10, 17)]
    assert list(weekly["week"]) == [day(m) for m in mondays]
    assert list(weekly["value"]) == [values[6], values[13], values[17]]
    assert np.isnan(weekly["change"][0])
    assert list(weekly["change"][1:]) == [70, 40]


def test_weekly_change_needs_both_weeks() -> None:
    values = [1000 + 10 * i for i in range(28)]
    frame = points(values).drop(index=list(range(7, 14))).reset_index(drop=True)
    weekly = weekly_values(daily_values(flagged(frame)))
    assert len(weekly) == 3  # week 2 has no data at all
    assert np.isnan(weekly["change"][1])  # week 3 follows a missing week: undefined
    assert weekly["change"][2] == 70


def test_daily_change_is_undefined_across_gaps() -> None:
    frame = points([10, 20, 30, 40]).drop(index=[2]).reset_index(drop=True)
    change = daily_change(daily_values(flagged(frame)))["change"]
    assert np.isnan(change[0]) and change[1] == 10 and np.isnan(change[2])


def test_per_period_values_are_summed_never_differenced() -> None:
    # Page views per day for two ISO weeks, the second incomplete.
    views = [100] * 7 + [50] * 3
    frame = points(views)
    weekly = period_sums(frame, "day")
    assert list(weekly["value"]) == [700, 150]
    assert list(weekly["periods"]) == [7, 3]
    assert list(weekly["complete"]) == [True, False]


def test_series_do_not_leak_into_each_other() -> None:
    one = points([100, 200, 300], series_id=1)
    two = points([5, 6, 7], series_id=2)
    daily = daily_change(daily_values(flagged(pd.concat([one, two], ignore_index=True))))
    assert np.isnan(daily["change"][3])  # the first day of series 2 has no previous day
