"""Network totals of a source with a relay: the relay's own series, never its hosts added up.

Issue 10, item 1: a relay lists active, banned and offline hosts; summing the per-host
readings counted accounts of hosts the relay itself leaves out (105,100 for 100).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from tests.analysis import relay_rows
from tests.analysis.relay_rows import END, PDS, RELAY, active_accounts
from tests.conftest import Workspace
from tests.support.datasets import Row
from tracker.analysis.conventions import day_number
from tracker.analysis.pipeline import Analysis, analyse
from tracker.storage.engine import open_database


def analysed(root: Path, *parts: Iterator[Row]) -> Analysis:
    root.mkdir(parents=True, exist_ok=True)
    workspace = Workspace(root)
    workspace.write_config()
    result = workspace.cli("import", str(relay_rows.write_csv(root / "rows.csv", *parts)))
    assert result.returncode == 0, result.stderr
    engine = open_database(f"sqlite:///{workspace.db}")
    try:
        return analyse(engine)
    finally:
        engine.dispose()


def total(analysis: Analysis, metric: str) -> pd.DataFrame:
    totals = analysis.totals
    chosen = totals[(totals["source"] == "bluesky") & (totals["metric"] == metric)]
    return chosen.set_index("day")


def own_daily(analysis: Analysis, target: str, metric: str) -> pd.Series:
    meta = analysis.series
    [series_id] = meta.index[(meta["target"] == target) & (meta["metric"] == metric)]
    daily = analysis.daily[analysis.daily["series_id"] == series_id]
    return daily.set_index("day")["value"]


def test_the_bluesky_network_total_is_the_relays_own_series_not_its_hosts_summed(
    tmp_path: Path,
) -> None:
    analysis = analysed(tmp_path)
    accounts = total(analysis, "users_total")
    last = day_number(END)
    # Active 1,000-odd, banned 150,000, offline 5,000: the network is the active ones.
    assert accounts.loc[last, "value"] == active_accounts(END)
    relay = own_daily(analysis, RELAY, "users_total")
    assert accounts["value"].to_dict() == relay.to_dict()
    assert set(accounts["reporting"]) == {1}
    assert total(analysis, "servers_total").loc[last, "value"] == 1
    # The relay counts no active accounts: those come from the PDS enumerated on its own.
    active = total(analysis, "users_active")
    assert active.loc[last, "value"] == own_daily(analysis, PDS, "users_active").loc[last]
    # Growth of the total is the relay's growth: the banned host's climb is not in it.
    weekly = analysis.weekly_totals
    weekly = weekly[(weekly["source"] == "bluesky") & (weekly["metric"] == "users_total")]
    [relay_id] = analysis.series.index[
        (analysis.series["target"] == RELAY) & (analysis.series["metric"] == "users_total")
    ]
    own = analysis.weekly[analysis.weekly["series_id"] == relay_id]
    changes = weekly.set_index("week")["change"].dropna()
    assert changes.to_dict() == own.set_index("week")["change"].dropna().to_dict()
    assert analysis.network_targets == {
        ("bluesky", "bluesky", "users_total"): RELAY,
        ("bluesky", "bluesky", "servers_total"): RELAY,
    }


def test_two_relays_give_the_network_of_the_one_seeing_most_hosts_not_their_sum(
    tmp_path: Path,
) -> None:
    analysis = analysed(
        tmp_path,
        relay_rows.relay_rows(),
        relay_rows.relay_rows("relay:relay.example", scale=2, servers=2),
    )
    accounts = total(analysis, "users_total")
    assert accounts.loc[day_number(END), "value"] == 2 * active_accounts(END)
    assert total(analysis, "servers_total").loc[day_number(END), "value"] == 2
    assert analysis.network_targets[("bluesky", "bluesky", "users_total")] == (
        "relay:relay.example"
    )


def test_a_relays_host_readings_never_add_up_even_without_the_relays_total(
    tmp_path: Path,
) -> None:
    # A listing cut off stores no relay total, but still the hosts it read: the network
    # total is then missing, neither 155,000-odd nor the one PDS enumerated beside them.
    analysis = analysed(tmp_path, relay_rows.relay_rows(with_total=False), relay_rows.pds_rows())
    assert total(analysis, "users_total").empty
    active = total(analysis, "users_active")  # which the relay does not count
    last = day_number(END)
    assert active.loc[last, "value"] == own_daily(analysis, PDS, "users_active").loc[last]


def test_without_a_relay_the_pds_series_add_up(tmp_path: Path) -> None:
    def renamed(rows: Iterator[Row], target: str) -> Iterator[Row]:
        for source, platform, _, metric, period, moment, value in rows:
            yield (source, platform, target, metric, period, moment, value)

    analysis = analysed(
        tmp_path,
        relay_rows.pds_rows(),
        renamed(relay_rows.pds_rows(), "pds2.example.com"),
    )
    accounts = total(analysis, "users_total")
    last = day_number(END)
    assert accounts.loc[last, "value"] == 2 * own_daily(analysis, PDS, "users_total").loc[last]
    assert analysis.network_targets == {}
    assert np.all(accounts["reporting"] == 2)


def test_series_of_unknown_meaning_never_add_to_a_network_total(tmp_path: Path) -> None:
    # Points the key change could not attribute (a relay total or a host's reading?)
    # are kept as `unattributed:<target>`: beside a relay or alone, they add nothing.
    def unattributed(target: str, value: int) -> Iterator[Row]:
        for day in relay_rows.days():
            yield ("bluesky", "bluesky", target, "users_total", "", relay_rows.at(day), value)

    analysis = analysed(
        tmp_path / "beside",
        relay_rows.relay_rows(),
        unattributed("unattributed:bsky.network", 200_000),
    )
    last = day_number(END)
    assert total(analysis, "users_total").loc[last, "value"] == active_accounts(END)
    alone = analysed(
        tmp_path / "alone",
        unattributed("unattributed:bsky.network", 200_000),
        unattributed("unattributed:pds.example.com", 300),
        relay_rows.pds_rows(),
    )
    assert total(alone, "users_total").empty
    assert total(alone, "users_active").loc[last, "value"] == 250 + (END - relay_rows.START).days
