"""Each archive format parsed from the real files, against figures computed here with csv/json.

The shipped series needs nothing from ../shared (it is read from the package);
the others are skipped in one line when the shared datasets are absent.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from tests.history.conftest import (
    BLUESKY_HOURLY,
    BLUESKY_POINTS,
    INSTANCES,
    JOINMASTODON,
    MASTODONUSERCOUNT,
    NOW,
    raw_rows,
)
from tracker.history.archives import ARCHIVES
from tracker.history.parse import Parsed, Reading, decode, detect, parse
from tracker.history.shipped import shipped_bytes


def by_metric(parsed: Parsed) -> dict[str, dict[datetime, int]]:
    values: dict[str, dict[datetime, int]] = {}
    for reading in parsed.readings:
        series = values.setdefault(reading.metric, {})
        assert reading.observed_at not in series, reading
        series[reading.observed_at] = reading.value
    return values


def parse_file(path: Path, name: str) -> Parsed:
    text = decode(path.read_bytes())
    archive = detect(text)
    assert archive.name == name
    return parse(archive.format, text, NOW)


def test_shipped_mastodonusercount_matches_its_raw_rows(tmp_path: Path) -> None:
    archive = ARCHIVES["mastodonusercount"]
    data = shipped_bytes(archive)
    raw_file = tmp_path / MASTODONUSERCOUNT
    raw_file.write_bytes(data)
    rows = raw_rows(raw_file)
    parsed = parse_file(raw_file, "mastodonusercount")

    zero_instances = [row for row in rows if row["instancecount"] == "0"]
    assert len(rows) == 37_144
    assert parsed.rows == len(rows)
    assert parsed.repeated == 0
    assert parsed.left_out == len(zero_instances) == 18
    values = by_metric(parsed)
    assert set(values) == {"users_total", "servers_total", "posts_total"}
    assert len(values["users_total"]) == len(values["posts_total"]) == len(rows)
    assert len(values["servers_total"]) == len(rows) - len(zero_instances)
    for row in (rows[0], rows[-1], rows[len(rows) // 2]):
        at = datetime.fromtimestamp(int(row["timestamp"]), UTC)
        assert values["users_total"][at] == int(row["usercount"])
        assert values["servers_total"][at] == int(row["instancecount"])
        assert values["posts_total"][at] == int(row["tootscount"])
    times = sorted(values["users_total"])
    assert times[0] == datetime(2018, 8, 11, 22, tzinfo=UTC)
    assert times[-1].date().isoformat() == "2022-11-07"
    assert max(values["users_total"].values()) == max(int(row["usercount"]) for row in rows)
    # the takeover: the bot's count on 2022-10-27 was about 5.6M (../shared/datasets/README.md)
    takeover = datetime(2022, 10, 27, 12, tzinfo=UTC)
    assert 5_500_000 < values["users_total"][takeover] < 5_700_000
    assert all(isinstance(reading, Reading) and reading.line >= 2 for reading in parsed.readings)


def test_shipped_file_is_the_published_file_byte_for_byte(
    shared: Callable[[str], Path],
) -> None:
    original = shared(MASTODONUSERCOUNT).read_bytes()
    assert shipped_bytes(ARCHIVES["mastodonusercount"]) == original


def test_joinmastodon_daily_statistics(shared: Callable[[str], Path]) -> None:
    path = shared(JOINMASTODON)
    rows = raw_rows(path)
    parsed = parse_file(path, "joinmastodon_archive")
    values = by_metric(parsed)
    assert parsed.rows == len(rows) == 1_051
    columns = {
        "servers_total": "server_count",
        "users_total": "user_count",
        "users_active_month": "active_user_count",
    }
    for metric, column in columns.items():
        expected = {
            datetime.strptime(row["date"], "%Y-%m-%d").replace(tzinfo=UTC): int(row[column])
            for row in rows
        }
        assert values[metric] == expected
    first = datetime(2022, 9, 30, tzinfo=UTC)
    assert (values["servers_total"][first], values["users_total"][first]) == (2_829, 3_605_039)
    assert values["users_active_month"][first] == 470_403
    assert min(values["users_total"]).date().isoformat() == rows[0]["date"]
    assert max(values["users_total"]).date().isoformat() == rows[-1]["date"] == "2025-10-14"


def test_instances_social_totals(shared: Callable[[str], Path]) -> None:
    path = shared(INSTANCES)
    rows = raw_rows(path)
    parsed = parse_file(path, "instances_social")
    values = by_metric(parsed)
    assert parsed.rows == len(rows) == 453
    assert len(parsed.readings) == 2 * len(rows)
    for row in rows:
        at = datetime.strptime(row["updated_at"], "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
        assert values["users_total"][at] == int(row["users"])
        assert values["posts_total"][at] == int(row["statuses"])
    assert sum(values["users_total"].values()) == sum(int(row["users"]) for row in rows)


def test_bluesky_points_json(shared: Callable[[str], Path]) -> None:
    path = shared(BLUESKY_POINTS)
    points = json.loads(path.read_text(encoding="utf-8"))
    parsed = parse_file(path, "bluesky_users")
    values = by_metric(parsed)["users_total"]
    assert parsed.rows == len(points) == 61
    expected = {
        datetime.strptime(point["date"], "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=UTC): int(
            point["users"]
        )
        for point in points
    }
    assert values == expected
    # each reading knows the line its object starts on (one object per line, after "[")
    lines = [reading.line for reading in sorted(parsed.readings, key=lambda r: r.observed_at)]
    assert lines == list(range(2, 2 + len(points)))


def test_bluesky_hourly_csv_reads_repeated_rows_once(shared: Callable[[str], Path]) -> None:
    path = shared(BLUESKY_HOURLY)
    rows = raw_rows(path)
    parsed = parse_file(path, "bsky_users")
    values = by_metric(parsed)["users_total"]
    repeats = Counter(row["timestamp"] for row in rows)
    assert parsed.rows == len(rows) == 10_979
    assert parsed.repeated == sum(count - 1 for count in repeats.values()) > 0
    assert len(values) == len(repeats)
    for row in rows:
        at = datetime.strptime(row["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        assert values[at] == int(row["users"])
