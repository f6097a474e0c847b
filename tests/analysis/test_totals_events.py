"""Network totals with coverage and carry-forward; event effects and waves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.analysis.helpers import T0, day
from tracker.analysis.events import flow_effect, level_effect, spread_weeks, waves
from tracker.analysis.totals import TotalsAccumulator, weekly_totals

META = pd.DataFrame(
    {
        "source": ["fediverse"] * 3,
        "platform": ["mastodon"] * 3,
        "target": ["a.example", "b.example", "c.example"],
        "metric": ["users_total"] * 3,
        "period": [""] * 3,
    },
    index=pd.Index([1, 2, 3], name="series_id"),
)


def daily(rows: list[tuple[int, int, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["series_id", "day", "value"])
    return frame.assign(jump=0.0, flag="", cumulative=True)


def meta_of(count: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source": ["fediverse"] * count,
            "platform": ["mastodon"] * count,
            "target": [f"s{n}.example" for n in range(1, count + 1)],
            "metric": ["users_total"] * count,
            "period": [""] * count,
        },
        index=pd.Index(range(1, count + 1), name="series_id"),
    )


def totals_of(
    rows: list[tuple[int, int, int]], carry: int = 3, meta: pd.DataFrame = META
) -> pd.DataFrame:
    frame = daily(rows)
    accumulator = TotalsAccumulator(int(frame["day"].min()), int(frame["day"].max()), carry)
    accumulator.add(frame, meta, {"fediverse": int(frame["day"].max())})
    return accumulator.frame().set_index("day")


def test_a_missing_day_is_carried_and_marked_stale_not_a_crash() -> None:
    # a reports every day; b (the big one) misses days 3 and 4.
    rows = [(1, d, 100 + d) for d in range(8)]
    rows += [(2, d, 10_000 + 10 * d) for d in range(8) if d not in (3, 4)]
    totals = totals_of(rows)
    assert totals.loc[3, "value"] == 103 + 10_020  # b's day-2 value carried
    assert (totals.loc[3, "reporting"], totals.loc[3, "carried"]) == (1, 1)
    assert bool(totals.loc[3, "stale"]) and not bool(totals.loc[2, "stale"])
    # Growth over the gap is b's real growth, landing when it reports again.
    assert totals.loc[3, "change"] == 1 and totals.loc[5, "change"] == 1 + 30
    assert totals["change"].sum() == 7 + 70


def test_a_target_gone_longer_than_the_carry_does_not_count_as_people_leaving() -> None:
    rows = [(1, d, 100 + d) for d in range(12)]
    rows += [(2, d, 10_000 + 10 * d) for d in range(12) if not 2 <= d <= 8]
    totals = totals_of(rows, carry=3)
    assert totals.loc[6, "value"] == 106  # b dropped out after 3 carried days
    assert totals.loc[5, "change"] == 1  # its disappearance is coverage, not growth
    assert totals.loc[9, "change"] == 1  # its return is coverage too
    assert totals.loc[9, "value"] == 109 + 10_090


def test_a_target_joining_adds_its_level_but_no_growth() -> None:
    rows = [(1, d, 100 + d) for d in range(6)] + [(3, d, 50_000 + d) for d in range(3, 6)]
    totals = totals_of(rows)
    assert totals.loc[3, "value"] == 103 + 50_003
    assert totals.loc[3, "change"] == 1
    assert totals.loc[4, "change"] == 2


def test_weekly_totals_sum_daily_growth_and_know_stale_weeks() -> None:
    start = day(T0)  # a Monday
    rows = [(1, start + d, 100 + d) for d in range(21)]
    rows += [(2, start + d, 1_000 + 10 * d) for d in range(21) if d != 13]
    weekly = weekly_totals(
        totals_of(rows)
        .reset_index()
        .assign(source="fediverse", platform="mastodon", metric="users_total")
    )
    assert list(weekly["week"]) == [start, start + 7, start + 14]
    # b missed Sunday (day 13): its growth of that day lands on Monday, in the next week,
    # so both weeks are marked stale and kept out of growth figures.
    assert list(weekly["change"][1:]) == [77 - 10, 77 + 10]
    assert list(weekly["stale"]) == [False, True, True]


def test_level_effect_measures_growth_above_the_trend() -> None:
    days = np.arange(0, 60, dtype=np.int64)
    level = 1000.0 + 10 * days
    level[days >= 30] += 500 + 40 * (days[days >= 30] - 30)  # the event adds growth
    effect = level_effect(days, level, 30, before=28, after=14)
    assert effect is not None
    expected = 10 * 14  # the trend over the 14 days from day 29 to day 43
    assert effect.expected == pytest.approx(expected)
    assert effect.observed == 10 * 14 + 500 + 40 * 13
    assert effect.excess == pytest.approx(effect.observed - expected)
    assert effect.ratio == pytest.approx(effect.observed / expected)


def test_flow_effect_compares_sums_with_the_baseline_rate() -> None:
    days = np.arange(0, 42, dtype=np.int64)
    views = np.where(days < 28, 100.0, 300.0)
    effect = flow_effect(days, views, 28, before=28, after=14)
    assert effect is not None
    assert (effect.expected, effect.observed, effect.ratio) == (1400, 4200, 3.0)
    weeks, spread = spread_weeks(np.array([0, 7]), np.array([70.0, 140.0]))
    assert list(weeks[:8]) == list(range(8)) and spread[0] == 10 and spread[7] == 20


def test_too_little_data_gives_no_effect_rather_than_a_made_up_one() -> None:
    days = np.arange(25, 35, dtype=np.int64)
    assert level_effect(days, days * 1.0, 30, before=28, after=14) is None


def test_waves_are_weeks_well_above_their_trailing_median() -> None:
    weeks = np.arange(0, 7 * 14, 7, dtype=np.int64)
    change = np.array([10, 12, 11, 9, 10, 11, 80, 95, 40, 12, 10, 11, 9, 10], dtype=float)
    found = waves(weeks, change, k=3, trailing=8)
    assert [(w.start, w.end, w.peak_week, w.peak_change) for w in found] == [(42, 56, 49, 95.0)]
    levels = np.full(len(change), 100_000.0)  # 95 a week on 100,000 is noise
    assert waves(weeks, change, k=3, trailing=8, levels=levels) == []


def test_a_relay_is_its_sources_total_and_nothing_is_added_beside_it() -> None:
    from tracker.analysis.totals import network_parts

    relay = "relay:bsky.network"
    rows = [
        ("bluesky", "bluesky", relay, "users_total", 100),
        ("bluesky", "bluesky", relay, "servers_total", 1),
        ("bluesky", "bluesky", f"{relay}/banned.example", "users_total", 100_000),
        ("bluesky", "bluesky", "pds.example.com", "users_total", 40),
        ("bluesky", "bluesky", "pds.example.com", "users_active", 30),
        ("joinmastodon", "mastodon", "joinmastodon", "users_total", 9_000_000),
        ("joinmastodon", "mastodon", "joinmastodon", "servers_total", 9_000),
    ]
    listing = pd.DataFrame(
        rows, columns=["source", "platform", "target", "metric", "last_value"]
    ).assign(period="", points=10)
    listing.index = pd.Index([10, 11, 12, 13, 14, 20, 21], name="series_id")
    found = network_parts(listing)
    # The hosts and the PDS stay out of the accounts total; the PDS's active count, which
    # the relay does not report, stays in; joinmastodon, alone, is its own total.
    assert found.left_out == {12, 13}
    assert found.sole == {
        ("bluesky", "bluesky", "users_total"): relay,
        ("bluesky", "bluesky", "servers_total"): relay,
    }


def test_a_crawl_sized_total_tolerates_a_few_percent_carried_before_it_is_stale() -> None:
    # 1,200 servers of 100 accounts; 30 (2.5%) miss day 2, 80 (6.7%) miss day 4.
    missing = {2: range(30), 4: range(80)}
    rows = [
        (server, day, 100)
        for server in range(1, 1_201)
        for day in range(6)
        if server - 1 not in missing.get(day, ())
    ]
    totals = totals_of(rows, meta=meta_of(1_200))
    assert list(totals["stale"]) == [False, False, False, False, True, False]
    # The same 2.5% in a small total is stale.
    small = [(s, d, 100) for s in range(1, 41) for d in range(4) if (s, d) != (1, 2)]
    assert bool(totals_of(small, meta=meta_of(40)).loc[2, "stale"])
