"""The payload archive at crawl scale: a month of crawls of 30,000 servers, old codec vs new.

    .venv/bin/python bench/archive.py [--servers 30000] [--days 30] [--per-day 1]
        [--big 60] [--modes delta,zlib,none] [--jobs 2] [--cold] [--keep DIR]

Writes the same simulated month through the real Store (`Store.write_targets`,
what a crawl writes for each measured server) into one SQLite file per mode:

- `delta`: the archive as it is now (payload_codec.py: peer lists as sorted sets
  diffed against the previous version, other bodies zlib with the previous version
  as preset dictionary, a whole copy every 32 versions);
- `zlib`: the archive as before revision 0005 (each distinct body zlib-compressed
  whole, `PayloadWriter(deltas=False)`);
- `none`: no bodies at all (the floor: what the database costs without the archive).

What each crawl fetches from each server (synthetic, real shapes from
../shared/payloads, numbers moving as a live server's do):

- robots.txt (Mastodon's default on 90% of servers, the same bytes everywhere);
- /.well-known/nodeinfo (names the server: one body per server, never changing);
- NodeInfo 2.0 (counts grow: busy servers change every crawl, tiny ones rarely);
- /api/v2/instance (its monthly active users: changes about daily);
- /api/v1/instance/activity (Mastodon caches it for a day);
- /api/v1/instance/peers (cached for a day): about 20 peers with a peer or two
  coming or going a day for most servers, and `--big` servers listing 20,000 to
  80,000 peers with 0.5% churn a day, in the server's own (database) order.

10% of the servers are dead or hostile (one failed request, no body). With
`--cold` each crawl gets a new Store, as a `tracker crawl` started by cron does (it
must find each stream's previous version in the fetch log); by default one Store
writes the month, as a long-running `tracker schedule` does (it remembers the last
version of each stream, 32 MB of them, then reads the rest from the database).

Prints, per mode: the database size at the end of the month, the payload table's
size (its rows, keys and index) and the fetch log's share, bytes per measured
server per crawl, and the write time per crawl.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import random
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import payloads as pl
from tracker.model import Failure, Fetched, Observation, Parsed, TargetResult
from tracker.storage.engine import open_database
from tracker.storage.payload_archive import PayloadWriter
from tracker.storage.store import Store

START = datetime(2026, 11, 1, tzinfo=UTC)
ROBOTS = b"# See http://www.robotstxt.org/robotstxt.html\nUser-agent: *\nDisallow: /media_proxy/\n"
SYLLABLES = ("ka", "ri", "to", "mo", "na", "shi", "ya", "po", "lu", "ve", "ra", "ne", "zo", "fi")
TLDS = ("social", "com", "net", "org", "jp", "de", "xyz", "online", "club", "io", "fr", "uk")
BATCH = 250
"""Servers per transaction: the crawl commits each server on its own; batching only
makes the benchmark faster, and the archive writes the same rows either way."""


def dumps(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def domain(rng: random.Random) -> str:
    name = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
    prefix = rng.choice(("", "mstdn.", "social.", "m.", "masto."))
    return f"{prefix}{name}{rng.randint(0, 999)}.{rng.choice(TLDS)}"


NODEINFO = pl.mastodon_nodeinfo(0, 0, 0, 0)
INSTANCE = pl.mastodon_instance_v2(0)
"""Templates, copied shallowly per body (a deep copy per body costs more than the rest)."""


@dataclass
class Server:
    host: str
    users: int
    active: float
    posts: int
    peers: list[str]
    churn: int
    """Peers that come and go a day."""
    dead: bool
    robots: bytes
    title: str
    daily: tuple[str, bytes, bytes] | None = None
    rows: list[tuple[int, int, int]] = field(default_factory=list)

    def grow(self, rng: random.Random, crawls_a_day: int) -> None:
        """One crawl's worth of a live server: tiny ones often do not move at all."""
        scale = 4 / crawls_a_day
        self.users += int(self.users * 0.0006 * rng.random() * 2 * scale)
        self.posts += int(self.users * 0.01 * rng.random() * 2 * scale)

    @property
    def active_month(self) -> int:
        return int(self.users * self.active)


def make_servers(count: int, big: int, rng: random.Random) -> list[Server]:
    hosts = sorted({domain(rng) for _ in range(count * 2)})
    rng.shuffle(hosts)
    known = hosts[: count * 2]
    far = [domain(rng) for _ in range(100_000)] if big else []  # servers not in this graph
    servers = []
    for index in range(count):
        users = min(int(rng.lognormvariate(math.log(20), 2.2)), 3_000_000)
        if index < big:
            size = rng.randint(20_000, 80_000)
            peers = rng.sample(known + far, size)
            churn = max(1, size // 200)  # 0.5% a day
            users = max(users, 20_000)
        else:
            peers = rng.sample(known, rng.randint(10, 30))
            churn = rng.choice((0, 0, 1, 1, 2))
        servers.append(
            Server(
                host=hosts[index],
                users=max(users, 1),
                active=rng.uniform(0.05, 0.3),
                posts=max(users, 1) * rng.randint(5, 200),
                peers=peers,
                churn=churn,
                dead=index % 10 == 9,
                robots=ROBOTS if rng.random() < 0.9 else ROBOTS + f"# {hosts[index]}\n".encode(),
                title=" ".join(rng.choice(SYLLABLES) for _ in range(3)).title(),
            )
        )
    return servers


class Crawl:
    """The bodies each server answers, crawl after crawl."""

    def __init__(self, servers: list[Server], crawls_a_day: int, seed: int) -> None:
        self.servers = servers
        self.crawls_a_day = crawls_a_day
        self.rng = random.Random(seed)
        self.pool = [s.host for s in servers]

    def results(self, at: datetime) -> list[TargetResult]:
        out = []
        for server in self.servers:
            if server.dead:
                failed = Fetched(
                    "robots.txt",
                    f"https://{server.host}/robots.txt",
                    at,
                    error_kind="connect_timeout",
                    error_detail="no answer in 10 s",
                )
                failure = Failure("connect_timeout", "no answer in 10 s")
                out.append(
                    TargetResult("fediverse", server.host, "failed", at, [failed], failure=failure)
                )
                continue
            server.grow(self.rng, self.crawls_a_day)
            out.append(self._target(server, at))
        return out

    def _daily(self, server: Server, at: datetime) -> tuple[bytes, bytes]:
        """Activity and peers, as Mastodon serves them: from a cache renewed daily."""
        day = f"{at:%Y-%m-%d}"
        if server.daily and server.daily[0] == day:
            return server.daily[1], server.daily[2]
        rng = self.rng
        for _ in range(server.churn):  # leaving from anywhere, new ones at the end
            server.peers.pop(rng.randrange(len(server.peers)))
        for _ in range(server.churn + (rng.random() < 0.3)):
            server.peers.append(rng.choice(self.pool) if rng.random() < 0.5 else domain(rng))
        weekly = (server.users // 50 + 1, server.active_month // 3 + 1, server.users // 500)
        server.rows = [weekly] + [
            server.rows[i] if i < len(server.rows) else weekly for i in range(11)
        ]
        activity = dumps(pl.aligned_activity(at, server.rows[:12]))
        peers = dumps(server.peers)
        server.daily = (day, activity, peers)
        return activity, peers

    def _target(self, server: Server, at: datetime) -> TargetResult:
        base = f"https://{server.host}"
        activity, peers = self._daily(server, at)
        users, active, posts = server.users, server.active_month, server.posts
        nodeinfo = dict(NODEINFO)
        nodeinfo["usage"] = {
            "users": {"total": users, "activeMonth": active, "activeHalfyear": int(active * 1.8)},
            "localPosts": posts,
        }
        nodeinfo["metadata"] = {"nodeName": server.title, "nodeDescription": ""}
        instance = dict(INSTANCE)
        instance["usage"] = {"users": {"active_month": active}}
        instance["domain"] = server.host
        instance["title"] = server.title
        fetched = [
            Fetched("robots.txt", base + "/robots.txt", at, status=200, body=server.robots),
            Fetched(
                "nodeinfo_links",
                base + "/.well-known/nodeinfo",
                at,
                status=200,
                body=dumps(pl.wellknown(base, "2.0")),
            ),
            Fetched("nodeinfo", base + "/nodeinfo/2.0", at, status=200, body=dumps(nodeinfo)),
            Fetched(
                "mastodon_instance_v2",
                base + "/api/v2/instance",
                at,
                status=200,
                body=dumps(instance),
            ),
            Fetched(
                "mastodon_activity",
                base + "/api/v1/instance/activity",
                at,
                status=200,
                body=activity,
            ),
            Fetched("mastodon_peers", base + "/api/v1/instance/peers", at, status=200, body=peers),
        ]
        metrics = {
            "users_total": users,
            "posts_total": posts,
            "users_active_month": active,
            "users_active_halfyear": int(active * 1.8),
            "registrations_open": 1,
            "peers_total": len(set(server.peers)),
        }
        observations = [Observation("mastodon", server.host, m, v, at) for m, v in metrics.items()]
        parsed = Parsed(observations, [], "mastodon", "mastodon", "4.3.2")
        return TargetResult("fediverse", server.host, "ok", at, fetched, parsed)


def without_bodies(results: list[TargetResult]) -> list[TargetResult]:
    from dataclasses import replace

    return [replace(r, fetched=[replace(f, body=None) for f in r.fetched]) for r in results]


def table_sizes(path: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Bytes per table with its indexes, and per index of payloads and fetches (SQLite's
    dbstat), when the build has it."""
    sizes: dict[str, int] = {}
    indexes: dict[str, int] = {}
    try:
        with sqlite3.connect(path) as db:
            owners = dict(db.execute("SELECT name, tbl_name FROM sqlite_master"))
            for name, size in db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
                owner = owners.get(name, name)
                sizes[owner] = sizes.get(owner, 0) + int(size)
                if owner in ("payloads", "fetches"):
                    indexes[name] = int(size)
    except sqlite3.OperationalError:
        return {}, {}
    return sizes, indexes


def simulate(mode: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)  # every mode gets exactly the same month
    servers = make_servers(args.servers, args.big, rng)
    crawl = Crawl(servers, args.per_day, args.seed + 1)
    path = folder / f"{mode}.db"
    for leftover in folder.glob(path.name + "*"):
        leftover.unlink()
    engine = open_database(f"sqlite:///{path}")
    store = Store(engine)
    if mode == "zlib":
        store.archive = PayloadWriter(deltas=False)
    write_seconds = 0.0
    crawls = args.days * args.per_day
    measured = 0
    for number in range(crawls):
        at = START + timedelta(hours=24 / args.per_day * number)
        results = crawl.results(at)
        measured += sum(1 for r in results if r.outcome == "ok")
        if mode == "none":
            results = without_bodies(results)
        if args.cold and mode != "none":
            store = Store(engine)
            if mode == "zlib":
                store.archive = PayloadWriter(deltas=False)
        started = time.perf_counter()
        run_id = store.start_run("fediverse", at)
        for start in range(0, len(results), BATCH):
            store.write_targets(run_id, results[start : start + BATCH])
        store.finish_run(run_id, at, "ok", {"targets_ok": len(results)})
        write_seconds += time.perf_counter() - started
        if number % max(1, crawls // 10) == 0 or number == crawls - 1:
            print(f"  {mode}: crawl {number + 1}/{crawls} written", flush=True)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        payload_rows, stored, raw = connection.exec_driver_sql(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0), COALESCE(SUM(size), 0) FROM payloads"
        ).one()
        codecs = dict(
            connection.exec_driver_sql("SELECT codec, COUNT(*) FROM payloads GROUP BY codec").all()
        )
    engine.dispose()
    return {
        "mode": mode,
        "size": path.stat().st_size,
        "tables": table_sizes(path)[0],
        "parts": table_sizes(path)[1],
        "measured": measured,
        "crawls": crawls,
        "write_seconds": write_seconds,
        "payload_rows": int(payload_rows),
        "stored": int(stored),
        "raw": int(raw),
        "codecs": codecs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", type=int, default=30_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=1, help="crawls a day (the schedule: 4)")
    parser.add_argument("--big", type=int, default=60, help="servers with 20k-80k peers")
    parser.add_argument("--modes", default="delta,zlib,none")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cold", action="store_true", help="a new Store per crawl")
    parser.add_argument("--seed", type=int, default=20261101)
    parser.add_argument("--keep", type=Path, help="keep the databases in this folder")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="tracker-archive-"))
    folder.mkdir(parents=True, exist_ok=True)
    modes = args.modes.split(",")
    print(
        f"command: .venv/bin/python bench/archive.py --servers {args.servers} --days {args.days} "
        f"--per-day {args.per_day} --big {args.big} --modes {args.modes}"
        f"{' --cold' if args.cold else ''}",
        flush=True,
    )
    started = time.monotonic()
    with multiprocessing.get_context("fork").Pool(min(args.jobs, len(modes))) as workers:
        reports = workers.starmap(simulate, [(mode, args, folder) for mode in modes])
    floor = next((r["size"] for r in reports if r["mode"] == "none"), None)
    print()
    print(
        "| mode | database after the month | payloads table | fetch log | archive per measured "
        "server per crawl | payload rows | write time per crawl |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for report in reports:
        per = report["measured"] or 1
        archive = (
            report["size"] - floor if floor is not None else report["tables"].get("payloads", 0)
        )
        tables = report["tables"]
        print(
            f"| {report['mode']} | {report['size'] / 1e6:,.1f} MB "
            f"| {tables.get('payloads', 0) / 1e6:,.1f} MB "
            f"| {tables.get('fetches', 0) / 1e6:,.1f} MB "
            f"| {archive / per:,.0f} B "
            f"| {report['payload_rows']:,} "
            f"| {report['write_seconds'] / report['crawls']:,.1f} s |"
        )
    for report in reports:
        per = report["measured"] or 1
        print(
            f"{report['mode']}: {report['measured']:,} measured server-crawls; bodies stored "
            f"{report['stored'] / 1e6:,.1f} MB for {report['raw'] / 1e6:,.1f} MB received "
            f"({report['stored'] / per:,.0f} B per server-crawl); codecs {report['codecs']}; "
            f"tables (MB) "
            + ", ".join(f"{k} {v / 1e6:,.1f}" for k, v in sorted(report["tables"].items()))
            + "; payloads and fetches by b-tree (MB) "
            + ", ".join(f"{k} {v / 1e6:,.1f}" for k, v in sorted(report["parts"].items()))
        )
    print(f"took {time.monotonic() - started:.0f} s; databases in {folder}")


if __name__ == "__main__":
    main()
