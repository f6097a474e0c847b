"""A Bluesky relay and the per-host readings it lists, keyed as the collector stores them.

The relay's own series (`relay:bsky.network`) is `users_total`, the sum over its
*active* hosts, and `servers_total`; its per-host readings
(`relay:bsky.network/<host>`) are stored for every host status, so a banned and an
offline host sit beside the active one. A PDS enumerated on its own is a plain host
key (`pds.example.com`). The banned host's count climbs in December: were the hosts
added up, that climb would be a wave of the network, and the network would count
105,000 accounts it does not have. Only the relay's own series makes the total.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from tests.support.datasets import HEADER, Row

START = date(2023, 12, 1)
END = date(2024, 3, 31)
OPENING = date(2024, 2, 6)  # "Bluesky opens without invites", one of the default events
BANNED_CLIMB = date(2023, 12, 11)
RELAY = "relay:bsky.network"
PDS = "pds.example.com"
BANNED = 100_000
OFFLINE = 5_000


def days(start: date = START, end: date = END) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def at(day: date) -> str:
    return datetime(day.year, day.month, day.day, 6, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def active_accounts(day: date) -> int:
    """The relay's total: 10 a day, and 300 a day more for the 14 days from the opening."""
    surge_days = min(max((day - OPENING).days + 1, 0), 14)
    return 1_000 + 10 * (day - START).days + 300 * surge_days


def banned_accounts(day: date) -> int:
    return BANNED + 5_000 * min(max((day - BANNED_CLIMB).days + 1, 0), 10)


def relay_rows(
    relay: str = RELAY, *, scale: int = 1, servers: int = 1, with_total: bool = True
) -> Iterator[Row]:
    """One relay: its own series (unless `with_total` is False) and its per-host readings."""
    for day in days():
        active = active_accounts(day) * scale
        if with_total:
            yield ("bluesky", "bluesky", relay, "users_total", "", at(day), active)
            yield ("bluesky", "bluesky", relay, "servers_total", "", at(day), servers)
        hosts = {
            "active.example": active,
            "banned.example": banned_accounts(day),
            "offline.example": OFFLINE,
        }
        for host, count in hosts.items():
            yield ("bluesky", "bluesky", f"{relay}/{host}", "users_total", "", at(day), count)


def pds_rows() -> Iterator[Row]:
    """A PDS enumerated account by account: its own measurement of one host."""
    for index, day in enumerate(days()):
        yield ("bluesky", "bluesky", PDS, "users_total", "", at(day), 300 + index)
        yield ("bluesky", "bluesky", PDS, "users_active", "", at(day), 250 + index)


def write_csv(path: Path, *parts: Iterator[Row]) -> Path:
    """The rows of `parts` (default: one relay and one PDS) in the export format."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        for rows in parts or (relay_rows(), pds_rows()):
            writer.writerows(rows)
    return path
