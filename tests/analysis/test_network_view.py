"""The crawl's network view (issue 11, section 5): daily totals per software family with
coverage, carry-forward, spam clusters left out, and the crawl's own counts never a total."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, text

from tests.analysis import crawl_rows
from tests.analysis.crawl_rows import ALIVE, FLAGGED, LATE, LONG_GAP, SHORT_GAP, START
from tracker.analysis.conventions import day_number
from tracker.analysis.network import COLUMNS, network_view
from tracker.analysis.pipeline import Analysis, analyse
from tracker.storage.engine import open_database

FIRST = day_number(START)
METRICS = ("users_total", "users_active_month", "posts_total")


def database(path: Path, **options: bool) -> Engine:
    engine = open_database(f"sqlite:///{path}")
    crawl_rows.write(engine, **options)
    return engine


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    engine = database(tmp_path_factory.mktemp("crawl") / "tracker.db")
    try:
        return analyse(engine)
    finally:
        engine.dispose()


def family(analysis: Analysis, platform: str, metric: str = "users_total") -> pd.DataFrame:
    view = analysis.network
    return view[(view["platform"] == platform) & (view["metric"] == metric)].set_index("day")


@pytest.mark.parametrize("platform", ["mastodon", "misskey", "lemmy", "gotosocial"])
@pytest.mark.parametrize("metric", METRICS)
def test_family_totals_are_the_servers_summed_with_carry_forward_and_no_flagged(
    crawled: Analysis, platform: str, metric: str
) -> None:
    totals = family(crawled, platform, metric)["value"]
    assert totals.to_dict() == dict(crawl_rows.expected(platform, metric))


def test_a_missing_server_is_carried_for_three_days_then_leaves_the_total(
    crawled: Analysis,
) -> None:
    misskey = family(crawled, "misskey")
    gone = [FIRST + day for day in LONG_GAP[1]]
    assert misskey.loc[gone, "servers_carried"].tolist() == [1, 1, 1, 0, 0, 0]
    assert misskey.loc[gone, "servers_measured"].tolist() == [49] * 6
    # Leaving is coverage, not people leaving: the change stays the others' growth.
    assert misskey.loc[gone[3], "change"] == 49 * 12
    mastodon = family(crawled, "mastodon")
    short = [FIRST + day for day in SHORT_GAP[1]]
    assert mastodon.loc[short, "servers_carried"].tolist() == [1, 1]
    lemmy = family(crawled, "lemmy")
    assert lemmy.loc[FIRST, "servers_measured"] == 44  # lemmy-1 joins on day 5
    assert lemmy.loc[FIRST + LATE[1], "servers_measured"] == 45
    assert np.isnan(lemmy.loc[FIRST, "change"])  # the first day of a total has no growth
    assert lemmy.loc[FIRST + LATE[1], "change"] == 44 * 12  # joining adds level, not growth


def test_coverage_is_servers_measured_over_the_crawls_alive_count(crawled: Analysis) -> None:
    last = FIRST + crawl_rows.DAYS - 1
    mastodon = family(crawled, "mastodon")
    assert mastodon.loc[last, "servers_alive"] == ALIVE["mastodon"]
    assert mastodon.loc[last, "coverage"] == pytest.approx(49 / 60)  # one flagged, left out
    assert mastodon.loc[FIRST + SHORT_GAP[1][0], "coverage"] == pytest.approx(48 / 60)
    lemmy = family(crawled, "lemmy")
    assert lemmy.loc[FIRST, "coverage"] == pytest.approx(44 / 45)
    # MAU has coverage of its own (here the same servers report it).
    assert family(crawled, "lemmy", "users_active_month").loc[FIRST, "coverage"] == pytest.approx(
        44 / 45
    )
    # A family the crawl never counted alive: measured over the servers the total knows.
    other = family(crawled, "gotosocial")
    assert other["servers_alive"].isna().all() and (other["coverage"] == 1.0).all()


def test_flagged_servers_are_left_out_of_every_total_of_the_source(crawled: Analysis) -> None:
    meta = crawled.series
    flagged = set(meta.loc[sorted(crawled.clustered), "target"])
    assert flagged == set(FLAGGED)
    assert len(crawled.clustered) == len(FLAGGED) * len(METRICS)
    totals = crawled.totals
    lemmy = totals[
        (totals["source"] == "fediverse")
        & (totals["platform"] == "lemmy")
        & (totals["metric"] == "users_total")
    ]
    assert int(lemmy["value"].max()) < 1_000_000  # the look-alikes claim a million each
    with_them = crawl_rows.expected("lemmy", "users_total", flagged_too=True)
    assert max(with_them.values()) > 5_000_000
    # Their own series are still analysed (listed in summary.json, charted as targets).
    assert set(crawled.stats.table.index) >= crawled.clustered


def test_the_crawls_own_counts_are_no_total_no_relay_and_no_accounts(crawled: Analysis) -> None:
    totals = crawled.totals
    assert set(totals["source"]) == {"fediverse", "joinmastodon"}
    assert not [key for key in crawled.network_targets if key[0] in ("crawl", "fediverse")]
    assert set(crawled.network["metric"]) == set(METRICS)
    meta = crawled.series
    crawl_ids = meta.index[meta["source"] == "crawl"]
    assert len(crawl_ids) == 2 * len(ALIVE)  # alive and measured, one series per family
    assert crawled.daily["series_id"].isin(crawl_ids).any()


def test_a_database_without_crawl_data_is_analysed_as_before(tmp_path: Path) -> None:
    plain = database(tmp_path / "plain.db", crawl=False)
    without_table = database(tmp_path / "old.db", crawl=False)
    with without_table.begin() as connection:  # a database from before the crawl
        connection.execute(text("DROP TABLE servers"))
    unflagged = database(tmp_path / "unflagged.db", flags=False)
    try:
        before = analyse(plain)
        old = analyse(without_table)
        clean = analyse(unflagged)
    finally:
        for engine in (plain, without_table, unflagged):
            engine.dispose()
    assert before.network.empty and list(before.network.columns) == COLUMNS
    assert before.clustered == frozenset() and old.clustered == frozenset()
    pd.testing.assert_frame_equal(before.totals, old.totals)
    # With the crawl, no flag: the fediverse totals are the plain ones, flagged included.
    fediverse = clean.totals[clean.totals["source"] == "fediverse"].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        fediverse, before.totals[before.totals["source"] == "fediverse"].reset_index(drop=True)
    )
    lemmy = family(clean, "lemmy")["value"]
    assert lemmy.to_dict() == dict(crawl_rows.expected("lemmy", "users_total", flagged_too=True))


def test_network_view_carries_the_alive_count_and_caps_coverage() -> None:
    meta = pd.DataFrame(
        {"platform": ["mastodon"], "metric": ["servers_alive"], "target": ["mastodon"]},
        index=pd.Index([9], name="series_id"),
    )
    totals = pd.DataFrame(
        {
            "source": "fediverse",
            "platform": "mastodon",
            "metric": "users_total",
            "day": np.arange(100, 108),
            "value": 1_000,
            "reporting": [10, 10, 12, 10, 10, 10, 10, 10],
            "carried": 0,
            "carried_value": 0.0,
            "stale": False,
            "change": 0.0,
        }
    )
    alive = pd.DataFrame({"series_id": 9, "day": [101, 102], "value": [11, 11]})
    view = network_view(totals, alive, meta, carry_days=3).set_index("day")
    assert view.index.min() == 101  # the view starts with the crawl
    assert view.loc[[101, 105], "servers_alive"].tolist() == [11, 11]  # carried 3 days
    assert np.isnan(view.loc[106, "servers_alive"])  # then the known servers
    assert view.loc[102, "coverage"] == 1.0  # 12 measured, 11 alive: capped
    assert view.loc[101, "coverage"] == pytest.approx(10 / 11)
    assert view.loc[106, "coverage"] == 1.0
    assert network_view(totals, alive.iloc[:0], meta).empty  # no crawl: no network view
