"""`tracker export` / `tracker import`: the CSV contract, round trips, all-or-nothing imports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Workspace

HEADER = "source,platform,target,metric,period,observed_at,value"
ROWS = [
    "joinmastodon,mastodon,joinmastodon,users_total,,2022-10-27T00:00:00Z,3605039",
    "fediverse,mastodon,mstdn.jp,users_total,,2022-11-07T06:00:00Z,250000",
    "fediverse,mastodon,mstdn.jp,registrations,week,2022-10-31T00:00:00Z,8123",
    "wikipedia,mixi,ja.wikipedia/ミクシィ,pageviews,day,2022-11-01T00:00:00Z,1840",
]


def write_csv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    workspace.write_config()
    return workspace


def test_round_trip_is_exact_and_ordered(ws: Workspace, tmp_path: Path) -> None:
    result = ws.cli("import", str(write_csv(tmp_path / "in.csv", ROWS)))
    assert result.returncode == 0, result.stderr
    assert "imported 4 observations" in result.stdout
    exported = ws.cli("export").stdout.splitlines()
    assert exported[0] == HEADER
    assert exported[1:] == sorted(
        ROWS,
        key=lambda r: (
            r.split(",")[0],
            r.split(",")[2],
            r.split(",")[3],
            r.split(",")[4],
            r.split(",")[5],
        ),
    )
    # Importing the export again changes nothing and duplicates nothing.
    again = write_csv(tmp_path / "again.csv", exported[1:])
    assert ws.cli("import", str(again)).returncode == 0
    assert ws.cli("export").stdout.splitlines() == exported


def test_json_and_filters(ws: Workspace, tmp_path: Path) -> None:
    assert ws.cli("import", str(write_csv(tmp_path / "in.csv", ROWS))).returncode == 0
    result = ws.cli("export", "--format", "json", "--source", "fediverse", "--since", "2022-11-01")
    data = json.loads(result.stdout)
    assert data == [
        {
            "source": "fediverse",
            "platform": "mastodon",
            "target": "mstdn.jp",
            "metric": "users_total",
            "period": "",
            "observed_at": "2022-11-07T06:00:00Z",
            "value": 250000,
        },
    ]
    until = ws.export("--until", "2022-10-31")
    assert {r["observed_at"] for r in until} == {"2022-10-27T00:00:00Z", "2022-10-31T00:00:00Z"}
    assert [r["target"] for r in ws.export("--platform", "mixi")] == ["ja.wikipedia/ミクシィ"]
    assert [r["period"] for r in ws.export("--metric", "registrations")] == ["week"]


def test_export_to_file(ws: Workspace, tmp_path: Path) -> None:
    assert ws.cli("import", str(write_csv(tmp_path / "in.csv", ROWS))).returncode == 0
    out = tmp_path / "out.csv"
    result = ws.cli("export", "--output", str(out))
    assert result.returncode == 0
    assert out.read_text(encoding="utf-8").splitlines()[0] == HEADER
    assert len(out.read_text(encoding="utf-8").splitlines()) == 5


def test_empty_database_exports_a_header_and_an_empty_array(ws: Workspace) -> None:
    assert ws.cli("export").stdout == HEADER + "\n"
    assert json.loads(ws.cli("export", "--format", "json").stdout) == []


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            "fediverse,mastodon,x,users_total,,2022-11-07T06:00:00Z,-5",
            "line 4: value '-5': negative count",
        ),
        (
            "fediverse,mastodon,x,users_total,,2022-11-07T06:00:00Z,1.5",
            "line 4: value '1.5': not a number",
        ),
        (
            "fediverse,mastodon,x,users_total,,2022-11-07 06:00,5",
            "line 4: observed_at '2022-11-07 06:00' has no time zone",
        ),
        (
            "fediverse,mastodon,x,users_total,,yesterday,5",
            "line 4: observed_at 'yesterday' is not an ISO 8601 time",
        ),
        ("fediverse,mastodon,x,users_total,month,2022-11-07T06:00:00Z,5", "line 4: period 'month'"),
        ("fediverse,mastodon,,users_total,,2022-11-07T06:00:00Z,5", "line 4: target is empty"),
        ("fediverse,mastodon,x,users_total,,2022-11-07T06:00:00Z", "line 4: expected 7 fields"),
    ],
)
def test_a_bad_row_rejects_the_whole_file(
    ws: Workspace, tmp_path: Path, bad: str, message: str
) -> None:
    rows = [*ROWS[:2], bad, *ROWS[2:]]
    result = ws.cli("import", str(write_csv(tmp_path / "bad.csv", rows)))
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert ws.cli("export").stdout == HEADER + "\n"
    assert "no runs yet" in ws.cli("status").stdout


def test_wrong_header_is_refused(ws: Workspace, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h.csv", ROWS, header="source,target,metric,observed_at,value")
    result = ws.cli("import", str(path))
    assert result.returncode == 1
    assert "line 1: header must be exactly source,platform,target" in result.stderr


def test_missing_file(ws: Workspace, tmp_path: Path) -> None:
    result = ws.cli("import", str(tmp_path / "nope.csv"))
    assert result.returncode == 1
    assert "cannot read" in result.stderr
