"""`tracker report` through the CLI: files, the summary.json contract, empty and sparse data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.support.datasets import instances_social, joinmastodon, write_csv

CHARTS = [
    "overview.png",
    "weekly_growth.png",
    "signups.png",
    "active_users.png",
    "share.png",
    "japan.png",
    "network.png",
    "mastodon_compare.png",
    "quality.png",
]


def load(folder: Path) -> dict[str, object]:
    return json.loads((folder / "summary.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def assert_complete(folder: Path) -> str:
    for name in CHARTS:
        data = (folder / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
    page = (folder / "index.html").read_text(encoding="utf-8")
    for name in CHARTS:
        assert f'src="{name}"' in page
    # Works offline: nothing is loaded from elsewhere.
    assert not re.search(r'(src|href)="(https?:)?//', page)
    return page


def test_empty_database_gives_a_report_that_says_so(workspace: Workspace) -> None:
    workspace.write_config()
    result = workspace.cli("report", TRACKER_NOW="2026-01-02T03:04:05Z")
    assert result.returncode == 0, result.stderr
    assert "holds no observations" in result.stdout
    folder = workspace.root / "data" / "reports" / "2026-01-02"
    page = assert_complete(folder)
    assert "No data yet" in page
    assert (workspace.root / "data" / "reports" / "latest" / "index.html").read_text() == page
    summary = load(folder)
    assert summary["generated_at"] == "2026-01-02T03:04:05Z"
    assert summary["empty"] is True and summary["series"] == []
    assert [event["effects"] for event in summary["events"]] == [[]] * len(summary["events"])  # type: ignore[attr-defined]


def test_a_single_observation_is_sparse_not_a_crash(workspace: Workspace, tmp_path: Path) -> None:
    workspace.write_config()
    csv_file = tmp_path / "one.csv"
    csv_file.write_text(
        "source,platform,target,metric,period,observed_at,value\n"
        "fediverse,mastodon,mstdn.jp,users_total,,2022-11-07T06:00:00Z,250000\n"
    )
    assert workspace.cli("import", str(csv_file)).returncode == 0
    out = tmp_path / "report"
    result = workspace.cli("report", "--output", str(out))
    assert result.returncode == 0, result.stderr
    page = assert_complete(out)
    assert "Sparse data: only 1 day" in page
    entries = [e for e in load(out)["series"] if e["target"] == "mstdn.jp"]  # type: ignore[attr-defined]
    assert entries == [
        {
            "source": "fediverse",
            "platform": "mastodon",
            "target": "mstdn.jp",
            "metric": "users_total",
            "first": {"date": "2022-11-07", "value": 250000},
            "last": {"date": "2022-11-07", "value": 250000},
            "peak": {"date": "2022-11-07", "value": 250000},
            "largest_weekly_gain": None,
            "flags": [],
        }
    ]


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    workspace = Workspace(tmp_path_factory.mktemp("report-real"))
    workspace.write_config()
    csv_file = write_csv(workspace.root / "real.csv", joinmastodon, instances_social)
    assert workspace.cli("import", str(csv_file)).returncode == 0
    return workspace


def test_real_data_report_has_the_contract_keys(real: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert real.cli("report", "--output", str(out)).returncode == 0
    assert_complete(out)
    summary = load(out)
    assert set(summary) >= {"generated_at", "series", "events"}
    for entry in summary["series"]:  # type: ignore[attr-defined]
        assert set(entry) >= {
            "source",
            "platform",
            "target",
            "metric",
            "first",
            "last",
            "peak",
            "largest_weekly_gain",
            "flags",
        }
        for flag in entry["flags"]:
            assert set(flag) == {"date", "kind", "detail"}
            assert re.fullmatch(r"\d{4}-\d\d-\d\d", flag["date"])
    totals = [e for e in summary["series"] if e["target"] == "*"]  # type: ignore[attr-defined]
    assert {(e["source"], e["metric"]) for e in totals} >= {("joinmastodon", "users_total")}
    assert all("coverage" in e for e in totals)
    [takeover] = [e for e in summary["events"] if e["date"] == "2022-10-27"]  # type: ignore[attr-defined]
    assert {"source", "target", "metric", "excess", "ratio"} <= set(takeover["effects"][0])


def test_since_and_until_restrict_every_figure(real: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "window"
    result = real.cli(
        "report", "--output", str(out), "--since", "2022-11-01", "--until", "2022-11-30"
    )
    assert result.returncode == 0, result.stderr
    summary = load(out)
    assert summary["range"] == {  # type: ignore[comparison-overlap]
        "since": "2022-11-01",
        "until": "2022-11-30",
        "first_day": "2022-11-01",
        "last_day": "2022-11-30",
    }
    for entry in summary["series"]:  # type: ignore[attr-defined]
        for point in ("first", "last", "peak"):
            assert "2022-11-01" <= entry[point]["date"] <= "2022-11-30"
    official = [
        e
        for e in summary["series"]  # type: ignore[attr-defined]
        if (e["source"], e["target"], e["metric"])
        == ("joinmastodon", "joinmastodon", "users_active_month")
    ]
    assert official[0]["peak"] == {"date": "2022-11-30", "value": 2624121}
