"""The real series of `../shared/datasets/` as export-format CSV, for `tracker import`.

Each tracker keeps its own `source`, because each counts a different "Mastodon";
they are compared side by side, never spliced. Conversions only re-shape rows:
no value is changed, none is dropped (a row whose time cannot be read would fail
the import loudly).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from tests.support.payloads import dataset

HEADER = ["source", "platform", "target", "metric", "period", "observed_at", "value"]
Row = tuple[str, str, str, str, str, str, int]


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def joinmastodon() -> Iterator[Row]:
    with dataset("joinmastodon_statistics_daily_2022-09-30_to_2025-10-14.csv").open() as handle:
        for row in csv.DictReader(handle):
            at = row["date"] + "T00:00:00Z"
            for metric, column in (
                ("servers_total", "server_count"),
                ("users_total", "user_count"),
                ("users_active_month", "active_user_count"),
            ):
                yield ("joinmastodon", "mastodon", "joinmastodon", metric, "", at, int(row[column]))


def mastodonusercount() -> Iterator[Row]:
    """The @mastodonusercount bot's hourly crawl of every instance it knew (2018-2022)."""
    with dataset("mastodonusercount_hourly_2018-08_to_2022-11-07.csv").open() as handle:
        for row in csv.DictReader(handle):
            at = _z(datetime.fromtimestamp(int(row["timestamp"]), UTC))
            for metric, column in (
                ("users_total", "usercount"),
                ("servers_total", "instancecount"),
                ("posts_total", "tootscount"),
            ):
                yield (
                    "mastodonusercount",
                    "mastodon",
                    "all-instances",
                    metric,
                    "",
                    at,
                    int(row[column]),
                )


def instances_social() -> Iterator[Row]:
    """instances.social totals (~3-hourly, Nov-Dec 2022): the re-index and the dropouts."""
    name = "instances_social_totals_3hourly_2022-11-04_to_2022-12-31.csv"
    with dataset(name).open() as handle:
        for row in csv.DictReader(handle):
            at = _z(datetime.strptime(row["updated_at"], "%Y-%m-%d %H:%M").replace(tzinfo=UTC))
            yield (
                "instances_social",
                "mastodon",
                "all-instances",
                "users_total",
                "",
                at,
                int(row["users"]),
            )
            yield (
                "instances_social",
                "mastodon",
                "all-instances",
                "posts_total",
                "",
                at,
                int(row["statuses"]),
            )


def bluesky() -> Iterator[Row]:
    """Bluesky account totals from two public trackers of bsky-users counts."""
    points = json.loads(dataset("bluesky_users_points_2023-05_to_2024-11.json").read_text())
    for point in points:
        at = _z(datetime.fromisoformat(point["date"].replace("Z", "+00:00")))
        yield ("bsky_users", "bluesky", "bsky.app", "users_total", "", at, int(point["users"]))
    with dataset("bluesky_users_hourly_2024-11_to_2026-04.csv").open() as handle:
        for row in csv.DictReader(handle):
            at = _z(datetime.strptime(row["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC))
            yield ("bsky_users", "bluesky", "bsky.app", "users_total", "", at, int(row["users"]))


ALL = (joinmastodon, mastodonusercount, instances_social, bluesky)


def write_csv(path: Path, *sources: object) -> Path:
    """Write the chosen datasets (default: all) as one export-format CSV."""
    chosen = sources or ALL
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        for source in chosen:
            writer.writerows(source())  # type: ignore[operator]
    return path
