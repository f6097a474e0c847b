"""A crawled fediverse written straight into a database, as `tracker crawl` stores it.

Three families of 50 servers each (source `fediverse`, one target per server, platform
= family) read 4 times a day for 30 days, plus a small family the crawl never counted
(two servers of a config list). Values grow by crawl, so each day's total is the sum
of the servers' 18:30 readings. Some servers miss days: one for 2 days (carried
forward), one for 6 (carried 3 days, then gone from the total), and one joins late.
Six servers are flagged as a spam cluster in `servers.cluster` (five Lemmy look-alikes
and one Mastodon server, each claiming a million accounts); the others have no flag.
The crawl's own counts (source `crawl`, one target per family, as `tracker.crawl.engine`
writes them) say how many of each family were alive, and joinmastodon's official
series runs beside them for the comparison chart.

`expected` recomputes a family's total from the same numbers, without the analysis.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert

from tracker.analysis.conventions import day_number
from tracker.storage.engine import write_transaction
from tracker.storage.points import upsert_rows
from tracker.storage.schema import servers

START = date(2024, 10, 20)
DAYS = 30
END = START + timedelta(days=DAYS - 1)
HOURS = (0, 6, 12, 18)
SERVERS_PER_FAMILY = 50
FAMILIES = {"mastodon": 20_000, "misskey": 5_000, "lemmy": 1_000}
"""Family: the accounts of its smallest servers (server n has 1 to 7 times that, plus 10 n)."""
UNCOUNTED = "gotosocial"
"""Two servers the crawl did not count as alive (no `servers_alive` for the family)."""
ALIVE = {"mastodon": 60, "misskey": 50, "lemmy": 45}
CARRY = 3

SHORT_GAP = ("mastodon-3.example", range(10, 12))  # 2 days: carried
LONG_GAP = ("misskey-7.example", range(20, 26))  # 6 days: carried 3, then left out
LATE = ("lemmy-1.example", 5)  # first reading on day 5
CLUSTER = "spam.example"
FLAGGED = [f"lemmy-{n}.example" for n in range(45, 50)] + ["mastodon-49.example"]


@dataclass(frozen=True)
class Server:
    host: str
    family: str
    base: int

    def accounts(self, crawl: int) -> int:
        huge = 1_000_000 if self.host in FLAGGED else 0
        return self.base + huge + 3 * crawl

    def readings(self, crawl: int) -> dict[str, int]:
        accounts = self.accounts(crawl)
        return {
            "users_total": accounts,
            "users_active_month": accounts // 5,
            "posts_total": accounts * 20,
        }

    def reports(self, day: int) -> bool:
        for host, days in (SHORT_GAP, LONG_GAP):
            if self.host == host and day in days:
                return False
        return not (self.host == LATE[0] and day < LATE[1])


def all_servers() -> list[Server]:
    found = [
        Server(f"{family}-{n}.example", family, first * (1 + n % 7) + 10 * n)
        for family, first in FAMILIES.items()
        for n in range(SERVERS_PER_FAMILY)
    ]
    found += [Server(f"{UNCOUNTED}-{n}.example", UNCOUNTED, 300 + n) for n in range(2)]
    return found


def moment(day: int, hour: int) -> datetime:
    start = datetime(START.year, START.month, START.day, hour, 30, tzinfo=UTC)
    return start + timedelta(days=day)


def rows(*, crawl: bool = True, official: bool = True) -> Iterator[tuple[bool, dict[str, Any]]]:
    """(replace, row) pairs for `upsert_rows`: the servers, the crawl's counts, joinmastodon."""
    for server in all_servers():
        for day in range(DAYS):
            if not server.reports(day):
                continue
            for index, hour in enumerate(HOURS):
                for metric, value in server.readings(day * 4 + index).items():
                    yield _row("fediverse", server.family, server.host, metric, day, hour, value)
    if crawl:
        for family, alive in ALIVE.items():
            for day in range(DAYS):
                for hour in HOURS:
                    yield _row("crawl", family, family, "servers_alive", day, hour, alive)
                    yield _row("crawl", family, family, "servers_measured", day, hour, alive - 5)
    if official:
        for day in range(DAYS):
            accounts = 4_500_000 + 400 * day
            official_counts = {
                "users_total": accounts,
                "users_active_month": accounts // 6,
                "servers_total": 70,
            }
            for metric, value in official_counts.items():
                yield _row("joinmastodon", "mastodon", "joinmastodon", metric, day, 1, value)


def _row(
    source: str, platform: str, target: str, metric: str, day: int, hour: int, value: int
) -> tuple[bool, dict[str, Any]]:
    return (
        True,
        {
            "source": source,
            "platform": platform,
            "target": target,
            "metric": metric,
            "period": "",
            "observed_at": moment(day, hour),
            "value": value,
            "run_id": None,
        },
    )


def server_rows(*, flags: bool = True) -> list[dict[str, Any]]:
    """The `servers` table: every server alive, the cluster flagged (when `flags`)."""
    seen = moment(0, 0)
    return [
        {
            "host": server.host,
            "state": "alive",
            "software": server.family,
            "first_seen": seen,
            "last_seen": moment(DAYS - 1, 18),
            "next_check": moment(DAYS, 0),
            "failures": 0,
            "cluster": CLUSTER if flags and server.host in FLAGGED else None,
        }
        for server in all_servers()
    ]


def write(engine: Engine, *, crawl: bool = True, official: bool = True, flags: bool = True) -> None:
    """Fill a database (already upgraded) with the crawl's rows."""
    with write_transaction(engine) as connection:
        upsert_rows(connection, rows(crawl=crawl, official=official))
        if crawl:
            connection.execute(insert(servers), server_rows(flags=flags))


def expected(family: str, metric: str, *, flagged_too: bool = False) -> Mapping[int, int]:
    """Day number -> the family's total of `metric`: each server's last reading of the
    day, carried for `CARRY` days when it is missing; flagged servers left out."""
    totals: dict[int, int] = {}
    for server in all_servers():
        if server.family != family or (server.host in FLAGGED and not flagged_too):
            continue
        last: tuple[int, int] | None = None
        for day in range(DAYS):
            if server.reports(day):
                last = (day, server.readings(day * 4 + 3)[metric])
            if last is not None and day - last[0] <= CARRY:
                key = day_number(START) + day
                totals[key] = totals.get(key, 0) + last[1]
    return totals


def reporting(family: str, day: int) -> int:
    """Servers of the family (flagged left out) with a reading on day `day` (0-based)."""
    return sum(
        1
        for server in all_servers()
        if server.family == family and server.host not in FLAGGED and server.reports(day)
    )
