"""Flags on synthetic series whose artefacts are known by construction."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.analysis.helpers import points
from tracker.analysis.quality import QualityRules, flag_points
from tracker.analysis.series import adjusted, daily_values


def flags_of(frame: pd.DataFrame, cumulative: bool = True) -> list[str]:
    flagged = flag_points(frame, np.full(len(frame), cumulative))
    return [str(flag) for flag in flagged["flag"]]


def steady(count: int, start: int = 100_000, step: int = 100) -> list[int]:
    return [start + step * index for index in range(count)]


def test_a_clean_series_has_no_flags() -> None:
    assert set(flags_of(points(steady(60)))) == {""}


def test_single_and_multi_point_dropouts_recover() -> None:
    values = steady(40)
    values[10] = int(values[10] * 0.6)  # one crawl missed a big server
    values[20:23] = [int(v * 0.8) for v in values[20:23]]  # three readings
    flags = flags_of(points(values))
    assert flags[10] == "dropout"
    assert flags[20:23] == ["dropout"] * 3
    assert [i for i, flag in enumerate(flags) if flag] == [10, 20, 21, 22]


def test_a_dip_that_does_not_recover_is_not_a_dropout() -> None:
    values = steady(30) + [50_000 + 100 * i for i in range(30)]  # falls and stays down
    flags = flags_of(points(values))
    assert "dropout" not in flags
    assert flags[30] == "step"  # a permanent level shift of a counter


def test_spike_is_flagged_and_not_used_as_a_daily_value() -> None:
    values = steady(30)
    values[15] = values[15] * 3
    frame = flag_points(points(values), np.ones(30, bool))
    assert str(frame["flag"][15]) == "spike"
    daily = daily_values(frame)
    assert 15 not in set(daily.index[daily["value"] == values[15]])
    assert len(daily) == 29


def test_reindex_step_is_excluded_from_growth_but_a_wave_is_not() -> None:
    # A tracker re-indexes: +50,000 at once, then the usual +100 a day.
    values = steady(30) + [150_000 + 100 * (30 + i) for i in range(30)]
    frame = flag_points(points(values), np.ones(60, bool))
    assert str(frame["flag"][30]) == "step"
    assert frame["jump"][30] == values[30] - values[29]
    level = adjusted(daily_values(frame).assign(cumulative=True))
    growth = np.diff(level)
    assert growth[29] == 0  # the re-index day adds nothing
    assert np.allclose(np.delete(growth, 29), 100)  # every other day its usual growth
    # A migration wave: the same kind of jump, but growth stays high afterwards.
    wave = steady(30) + [values[29] + 5_000 * (i + 1) for i in range(30)]
    assert "step" not in flags_of(points(wave))


def test_decrease_of_a_counter_counts_as_no_growth_either_way() -> None:
    values = steady(20) + [99_000, 99_100, 99_200] + [101_900 + 100 * i for i in range(20)]
    frame = flag_points(points(values), np.ones(len(values), bool))
    assert str(frame["flag"][20]) == "decrease"
    daily = daily_values(frame).assign(cumulative=True)
    level = adjusted(daily)
    # The running maximum: the fall and the climb back to 101,900 add nothing.
    assert level[19] == values[19] == level[22]
    assert level[-1] - level[19] == values[-1] - 101_900 + (101_900 - values[19])


def test_non_cumulative_metrics_may_fall_and_small_wiggles_are_not_flagged() -> None:
    active = [50_000, 51_000, 49_900, 50_500, 48_000, 47_000, 46_500] * 5
    assert set(flags_of(points(active), cumulative=False)) == {""}


def test_thresholds_are_rules_not_constants() -> None:
    values = steady(30)
    values[12] = int(values[12] * 0.97)  # a 3% dip
    assert flags_of(points(values))[12] == "decrease"
    strict = flag_points(points(values), np.ones(30, bool), QualityRules(dropout_share=0.02))
    assert str(strict["flag"][12]) == "dropout"


def test_a_reindex_step_in_the_last_seven_readings_is_flagged() -> None:
    # Issue 10, item 5: 60 days of +100, then a tracker re-indexes 4 readings before the end.
    values = steady(56) + [160_000 + 100 * i for i in range(4)]
    frame = flag_points(points(values), np.ones(60, bool))
    assert [i for i, flag in enumerate(frame["flag"]) if flag] == [56]
    assert str(frame["flag"][56]) == "step"
    assert frame["jump"][56] == values[56] - values[55]
    growth = np.diff(adjusted(daily_values(frame).assign(cumulative=True)))
    assert np.allclose(growth, [100] * 55 + [0] + [100] * 3)


def test_a_reindex_step_on_the_very_last_reading_is_flagged() -> None:
    values = [*steady(40), 200_000]  # holds to the end: nothing says it is growth
    assert flags_of(points(values))[40] == "step"


def test_a_reindex_step_in_the_first_seven_readings_is_flagged() -> None:
    values = [100_000, 100_100, 100_200] + [150_300 + 100 * i for i in range(40)]
    flags = flags_of(points(values))
    assert flags[3] == "step"
    assert [i for i, flag in enumerate(flags) if flag] == [3]


def test_an_edge_step_is_neither_the_largest_weekly_gain_nor_growth() -> None:
    from tracker.analysis.series import weekly_values
    from tracker.analysis.summaries import series_stats

    values = [100_000 + 7_000 * i for i in range(6)] + [140_000 + 7_000 * i for i in range(30)]
    values += [500_000 + 7_000 * i for i in range(3)]  # a re-index two days before the end
    frame = flag_points(points(values), np.ones(len(values), bool))
    assert [i for i, flag in enumerate(frame["flag"]) if flag] == [36]
    daily = daily_values(frame).assign(cumulative=True)
    stats = series_stats(daily, weekly_values(daily), frame.iloc[0:0])
    assert stats.table["best_week_change"].iloc[0] == 7 * 7_000


def test_growth_near_the_ends_is_not_an_edge_step() -> None:
    # A wave starting 5 readings before the end keeps growing: it is growth, not a step.
    wave = steady(40) + [104_000 + 5_000 * (i + 1) for i in range(5)]
    assert "step" not in flags_of(points(wave))
    # Noisy readings at the start are not steps either: each change is typical of the rest.
    noisy = [100_000 + int(v) for v in np.cumsum([0, 900, 1_100, 800, 1_200, 1_000] * 6)]
    assert set(flags_of(points(noisy))) == {""}
    # Too little to judge by: two readings say nothing of the typical change.
    assert set(flags_of(points([100_000, 200_000]))) == {""}
