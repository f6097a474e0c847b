"""`tracker report` on a crawled database: the two network charts, their captions, and the
`network` object summary.json gains (issue 11, section 5). Existing keys stay as they were."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.analysis import crawl_rows
from tests.conftest import Workspace
from tests.report.test_report import CHARTS, assert_complete, load
from tracker.storage.engine import open_database


def report(workspace: Workspace, **options: bool) -> tuple[dict[str, Any], str]:
    workspace.write_config()
    engine = open_database(workspace.db_url)
    try:
        crawl_rows.write(engine, **options)
    finally:
        engine.dispose()
    out = workspace.root / "report"
    result = workspace.cli("report", "--output", str(out), TRACKER_NOW="2024-11-19T06:00:00Z")
    assert result.returncode == 0, result.stderr
    page = assert_complete(out)
    assert {"network.png", "mastodon_compare.png"} <= set(CHARTS)
    return load(out), page


def test_summary_gains_the_crawls_totals_per_family(workspace: Workspace) -> None:
    summary, page = report(workspace)
    network = summary["network"]
    assert network["source"] == "fediverse"
    assert (network["first_day"], network["last_day"]) == ("2024-10-20", "2024-11-18")
    assert network["flagged_servers"] == len(crawl_rows.FLAGGED)
    families = network["families"]
    assert list(families) == ["mastodon", "misskey", "lemmy", "gotosocial"]  # largest first
    last = max(crawl_rows.expected("mastodon", "users_total"))
    mastodon = families["mastodon"]
    assert mastodon == {
        "last_day": "2024-11-18",
        "accounts": crawl_rows.expected("mastodon", "users_total")[last],
        "monthly_active": crawl_rows.expected("mastodon", "users_active_month")[last],
        "posts": crawl_rows.expected("mastodon", "posts_total")[last],
        "servers_measured": 49,
        "servers_carried": 0,
        "servers_alive": 60,
        "coverage": 0.817,
        "stale": False,
        "flagged_servers": 1,
        "metrics": mastodon["metrics"],
    }
    assert set(mastodon["metrics"]) == {"users_total", "users_active_month", "posts_total"}
    assert mastodon["metrics"]["users_active_month"] == {
        "value": mastodon["monthly_active"],
        "servers_measured": 49,
        "servers_carried": 0,
        "coverage": 0.817,
        "stale": False,
    }
    assert families["lemmy"]["flagged_servers"] == 5 and families["lemmy"]["coverage"] == 1.0
    assert families["gotosocial"]["servers_alive"] is None  # the crawl did not count it
    # The page shows the crawl's largest families and both charts with their captions.
    assert "crawl Mastodon accounts" in page and "49 servers measured of 60 alive (82%)" in page
    assert "Left out as spam clusters: 6 servers" in page
    assert "Why they differ: joinmastodon.org counts" in page


def test_existing_keys_keep_their_shape_beside_the_crawl(workspace: Workspace) -> None:
    summary, _ = report(workspace)
    assert set(summary) == {
        "headline",  # added by issue 12: the answer first
        "generated_at",
        "empty",
        "range",
        "series",
        "per_period",
        "events",
        "network",
    }
    totals = [e for e in summary["series"] if e["target"] == "*"]
    assert all("coverage" in e for e in totals)
    assert {e["source"] for e in totals} == {"fediverse", "joinmastodon"}  # never `crawl`
    lemmy = [e for e in totals if (e["platform"], e["metric"]) == ("lemmy", "users_total")]
    assert lemmy[0]["last"]["value"] == summary["network"]["families"]["lemmy"]["accounts"]
    assert lemmy[0]["coverage"]["targets"] == 45  # the five flagged servers are not in it
    alive = [e for e in summary["series"] if e["source"] == "crawl"]
    assert {(e["target"], e["metric"]) for e in alive} >= {("mastodon", "servers_alive")}


@pytest.mark.parametrize("options", [{"crawl": False}, {"crawl": False, "official": False}])
def test_without_a_crawl_the_network_is_empty_and_the_charts_say_why(
    workspace: Workspace, options: dict[str, bool]
) -> None:
    summary, page = report(workspace, **options)
    assert summary["network"] == {
        "source": "fediverse",
        "first_day": None,
        "last_day": None,
        "flagged_servers": 0,
        "families": {},
    }
    assert page.count("No crawl yet") == 2
    assert "crawl Mastodon accounts" not in page


def test_png_files_of_the_network_charts_are_written(workspace: Workspace) -> None:
    report(workspace)
    for name in ("network.png", "mastodon_compare.png"):
        path: Path = workspace.root / "report" / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 30_000
