"""summary.json of a Bluesky relay through `tracker report`: the network total, its waves and
its event effects are the relay's own series (issue 10, item 1)."""

from __future__ import annotations

import json
from typing import Any

from tests.analysis import relay_rows
from tests.analysis.relay_rows import END, OFFLINE, PDS, RELAY, active_accounts
from tests.conftest import Workspace


def entry(summary: dict[str, Any], target: str, metric: str) -> dict[str, Any]:
    [found] = [
        e
        for e in summary["series"]
        if (e["source"], e["target"], e["metric"]) == ("bluesky", target, metric)
    ]
    return found  # type: ignore[no-any-return]


def test_summary_network_total_of_bluesky_is_the_relays_series_with_its_waves_and_effects(
    workspace: Workspace,
) -> None:
    workspace.write_config()
    rows = relay_rows.write_csv(workspace.root / "rows.csv")
    assert workspace.cli("import", str(rows)).returncode == 0
    out = workspace.root / "report"
    result = workspace.cli("report", "--output", str(out))
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))

    star, relay = entry(summary, "*", "users_total"), entry(summary, RELAY, "users_total")
    # Not 1,000-odd active + 150,000 banned + 5,000 offline (+ the PDS counted twice).
    assert star["last"] == {"date": END.isoformat(), "value": active_accounts(END)}
    assert (star["first"], star["last"], star["peak"]) == (
        relay["first"],
        relay["last"],
        relay["peak"],
    )
    # The banned host's December climb is neither the largest gain nor a wave.
    assert star["largest_weekly_gain"] == relay["largest_weekly_gain"]
    assert star["largest_weekly_gain"] == {"week": "2024-02-12", "value": 2170}
    assert [(w["start"], w["end"]) for w in star["waves"]] == [("2024-02-05", "2024-02-19")]
    assert star["network_target"] == RELAY
    assert entry(summary, "*", "servers_total")["last"]["value"] == 1
    # The relay counts no active accounts: that total is the PDS's own.
    pds_active = entry(summary, PDS, "users_active")
    assert entry(summary, "*", "users_active")["last"] == pds_active["last"]
    # The per-host readings stay, as themselves.
    host = entry(summary, f"{RELAY}/offline.example", "users_total")
    assert host["last"]["value"] == OFFLINE

    [opening] = [event for event in summary["events"] if event["date"] == "2024-02-06"]
    effects = {
        (effect["target"], effect["metric"]): effect
        for effect in opening["effects"]
        if effect["source"] == "bluesky"
    }
    network, own = effects[("*", "users_total")], effects[(RELAY, "users_total")]
    assert {**network, "target": RELAY} == own
    assert network["observed"] == 14 * 310
    # The page's headline measures the relay's count, not one of the hosts it lists.
    [headline] = [e for e in summary["headline"]["events"] if e["date"] == "2024-02-06"]
    [gain] = [g for g in headline["gains"] if g["source"] == "bluesky"]
    assert gain["observed"] == network["observed"]
    assert gain["source_text"].endswith(f"({RELAY})")
    page = (out / "index.html").read_text(encoding="utf-8")
    assert f"({RELAY})" in page
    assert f"{RELAY}/" not in page
