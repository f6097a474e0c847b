"""Fixtures of the archive tests: the real files of ../shared/datasets, or a one-line skip."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.payloads import dataset

NOW = datetime(2026, 6, 1, tzinfo=UTC)
"""After every archive's last row (the Bluesky hourly file ends 2026-04-13)."""

MASTODONUSERCOUNT = "mastodonusercount_hourly_2018-08_to_2022-11-07.csv"
JOINMASTODON = "joinmastodon_statistics_daily_2022-09-30_to_2025-10-14.csv"
INSTANCES = "instances_social_totals_3hourly_2022-11-04_to_2022-12-31.csv"
BLUESKY_POINTS = "bluesky_users_points_2023-05_to_2024-11.json"
BLUESKY_HOURLY = "bluesky_users_hourly_2024-11_to_2026-04.csv"


@pytest.fixture
def shared() -> Callable[[str], Path]:
    """The path of a shared dataset; skipped (one line) when absent, failed under CI."""
    return dataset


def raw_rows(path: Path) -> list[dict[str, str]]:
    """The file's rows as the csv module reads them: the independent side of each check."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
