"""Fediverse-, Bluesky-, Wikipedia- and Tumblr-like rows in the export format.

The real datasets (tests/support/datasets.py) hold only network-wide series of
single platforms, so the Japan and share charts would have nothing to draw from
them. These rows imitate what the collectors store: daily readings of named
servers (with a re-index step, a dropout and a three-day outage), weekly sign-ups,
a Bluesky relay whose total sums its active hosts (beside a banned one it lists), a
PDS enumerated on its own, and daily page views of English and Japanese articles
(Japanese titles included). Numbers are invented but shaped like
the November 2022 wave; a fixed seed keeps them identical from run to run.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from tests.support.datasets import HEADER, Row

START = date(2022, 9, 1)
END = date(2023, 3, 31)
TAKEOVER = date(2022, 10, 27)
MISSKEY_WAVE = date(2023, 2, 6)
STEP_DAY = date(2022, 12, 1)
DROPOUT_DAY = date(2022, 11, 20)
OUTAGE = (date(2023, 1, 10), date(2023, 1, 12))

SERVERS = {
    # target: (platform, accounts before, surge at the takeover, MAU before, MAU surge)
    "mastodon.social": ("mastodon", 850_000, 400_000, 200_000, 1_000_000),
    "mstdn.jp": ("mastodon", 240_000, 30_000, 10_000, 15_000),
    "pawoo.net": ("mastodon", 800_000, 20_000, 5_000, 3_000),
    "fedibird.com": ("mastodon", 30_000, 15_000, 3_000, 5_000),
    "misskey.io": ("misskey", 100_000, 60_000, 20_000, 60_000),
    "lemmy.world": ("lemmy", 2_000, 5_000, 500, 1_500),
}
SIGNUP_SERVERS = ("mastodon.social", "mstdn.jp", "fedibird.com")
ARTICLES = {
    # target: (platform, views per day before, surge factor at the takeover)
    "ja.wikipedia/Mixi": ("mixi", 1_500, 2.0),
    "ja.wikipedia/Mastodon_(ソフトウェア)": ("mastodon", 300, 20.0),
    "ja.wikipedia/Misskey": ("misskey", 200, 5.0),
    "ja.wikipedia/Bluesky": ("bluesky", 50, 3.0),
    "ja.wikipedia/X_(SNS)": ("twitter", 8_000, 3.0),
    "en.wikipedia/Mastodon_(social_network)": ("mastodon", 2_000, 30.0),
    "en.wikipedia/Bluesky": ("bluesky", 800, 4.0),
    "en.wikipedia/Tumblr": ("tumblr", 3_000, 1.5),
    "en.wikipedia/Twitter": ("twitter", 30_000, 2.0),
    "en.wikipedia/Cohost": ("cohost", 100, 20.0),
    "en.wikipedia/CounterSocial": ("countersocial", 30, 10.0),
}
RELAY = "relay:bsky.network"
BLUESKY_HOSTS = {"morel.host.bsky.network": 40_000, "amanita.host.bsky.network": 55_000}
BANNED_HOST = "banned.example"
BLUESKY_START = date(2023, 2, 1)


def _days(start: date = START, end: date = END) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def _at(day: date, hour: int = 6) -> str:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _surge(day: date, start: date, days: float = 12.0) -> float:
    """0 before `start`, rising to 1 over a few weeks after it."""
    elapsed = (day - start).days
    return 0.0 if elapsed < 0 else 1.0 - float(np.exp(-elapsed / days))


def _burst(day: date, start: date, days: float = 10.0) -> float:
    """0 before `start`, 1 on it, fading back to 0 (attention, activity)."""
    elapsed = (day - start).days
    return 0.0 if elapsed < 0 else float(np.exp(-elapsed / days))


def fediverse(rng: np.random.Generator) -> Iterator[Row]:
    for target, (platform, before, surge, active, active_surge) in SERVERS.items():
        for index, day in enumerate(_days()):
            if target == "mstdn.jp" and OUTAGE[0] <= day <= OUTAGE[1]:
                continue
            growth = before * (1 + 0.0004 * index) + surge * _surge(day, TAKEOVER)
            if target == "misskey.io":
                growth += 150_000 * _surge(day, MISSKEY_WAVE, 6.0)
            if target == "pawoo.net" and day >= STEP_DAY:
                growth += 150_000
            accounts = int(growth + rng.integers(0, 20))
            yield ("fediverse", platform, target, "users_total", "", _at(day), accounts)
            mau = active + active_surge * _burst(day, TAKEOVER + timedelta(days=5), 60.0)
            yield ("fediverse", platform, target, "users_active_month", "", _at(day), int(mau))
            if target == "mastodon.social" and day == DROPOUT_DAY:
                low = int(accounts * 0.7)
                yield ("fediverse", platform, target, "users_total", "", _at(day, 12), low)
                yield ("fediverse", platform, target, "users_total", "", _at(day, 18), accounts)
    for target in SIGNUP_SERVERS:
        platform, before, surge, _, _ = SERVERS[target]
        for day in _days():
            if day.weekday() != 0:
                continue
            week = before * 0.003 + surge * 0.5 * _burst(day, TAKEOVER - timedelta(days=4), 9.0)
            value = int(week + rng.integers(0, 50))
            yield ("fediverse", platform, target, "registrations", "week", _at(day, 0), value)


def bluesky() -> Iterator[Row]:
    for index, day in enumerate(_days(BLUESKY_START)):
        total = 0
        for host, base in BLUESKY_HOSTS.items():
            count = base + 300 * index
            total += count
            yield ("bluesky", "bluesky", f"{RELAY}/{host}", "users_total", "", _at(day), count)
        banned = f"{RELAY}/{BANNED_HOST}"  # listed by the relay, left out of its total
        yield ("bluesky", "bluesky", banned, "users_total", "", _at(day), 70_000)
        yield ("bluesky", "bluesky", RELAY, "users_total", "", _at(day), total)
        yield ("bluesky", "bluesky", RELAY, "servers_total", "", _at(day), 2)
        yield ("bluesky", "bluesky", "pds.example.jp", "users_total", "", _at(day), 900 + index)
        yield ("bluesky", "bluesky", "pds.example.jp", "users_active", "", _at(day), 850 + index)


def wikipedia(rng: np.random.Generator) -> Iterator[Row]:
    for target, (platform, views, factor) in ARTICLES.items():
        for day in _days():
            level = views * (1 + (factor - 1) * _burst(day, TAKEOVER, 8.0))
            if platform == "misskey":
                level += views * 4 * _burst(day, MISSKEY_WAVE, 7.0)
            value = int(level * (0.9 + 0.2 * rng.random()))
            yield ("wikipedia", platform, target, "pageviews", "day", _at(day, 0), value)


def tumblr(rng: np.random.Generator) -> Iterator[Row]:
    for day in _days():
        posts = int(400 * (1 + 3 * _burst(day, TAKEOVER, 6.0)) + rng.integers(0, 40))
        yield ("tumblr", "tumblr", "tag:mastodon", "tagged_posts", "day", _at(day, 0), posts)


def write_csv(path: Path, seed: int = 7) -> Path:
    rng = np.random.default_rng(seed)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        for rows in (fediverse(rng), bluesky(), wikipedia(rng), tumblr(rng)):
            writer.writerows(rows)
    return path
