"""Database size per month over a year of a realistic deployment, with and without the archive.

    .venv/bin/python bench/growth.py [--days 365] [--instances 200] [--hosts 3000] [--no-peers]

Simulates the default collectors' year through the real storage layer
(`Store.write_targets`, the writes a collection makes), into two SQLite files
side by side: one keeps every response body in the payload archive as the
tracker does, the other gets the same runs with no bodies (the floor: what the
database costs without the archive). At the end the first one is pruned to 90
days (`tracker db prune --payloads-older-than 90d`, with VACUUM), the size a
deployment with that monthly prune settles at.

What one simulated year holds (bodies are the real shapes of ../shared/payloads,
with each server's numbers moving as a live server's do; the archive stores a
body once per content hash, so how often bodies change decides its size):

- fediverse, every 6 h, `--instances` servers (75% Mastodon, the rest Misskey,
  Lemmy, Pleroma, GoToSocial, Pixelfed; sizes log-normal, a few flaky or dead):
  robots.txt, NodeInfo links and document, and for Mastodon /api/v2/instance,
  /activity (changes daily: cached a day) and /peers (a domain list of ~8,000
  peers at the median, up to 80,000, growing daily: cached a day);
- bluesky, every 6 h: one relay's listHosts, `--hosts` hosts in pages of 1,000
  (about 100 big Bluesky shards whose counts move every run, the rest small
  self-hosted PDSes that rarely change; a few new hosts a day), one
  `users_total` per host per run;
- joinmastodon, daily: the whole window since 2022-09-30 (as the API returns it);
- wikipedia, daily: 19 articles (a two-year backfill on the first day, then 3 days);
- tumblr, daily: 4 tags (busy tags capped at 50 pages of 20 posts) and one blog.

The two databases are written by two processes. A year takes 35 to 50 minutes on
a 2-core machine, most of it zlib compressing the day's new peer lists and
instance documents, as the collector itself does (`--days 30` for a quick look).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing
import random
import sys
import tempfile
import time
import zlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import payloads as pl
from tracker.model import Failure, Fetched, Observation, Parsed, TargetResult
from tracker.storage import store as store_module
from tracker.storage.engine import open_database
from tracker.storage.prune import prune_payloads
from tracker.storage.store import Store

START = datetime(2024, 1, 1, tzinfo=UTC)
ROBOTS = b"# See http://www.robotstxt.org/robotstxt.html\nUser-agent: *\nDisallow: /media_proxy/\n"
FAMILIES = (
    ("mastodon", 0.75),
    ("misskey", 0.10),
    ("lemmy", 0.07),
    ("pleroma", 0.04),
    ("gotosocial", 0.02),
    ("pixelfed", 0.02),
)
NODEINFO_FILE = {
    "pleroma": "fediverse/nodeinfo/pleroma_2.0.json",
    "gotosocial": "fediverse/nodeinfo/gotosocial_2.1.json",
    "pixelfed": "fediverse/nodeinfo/pixelfed_2.0.json",
}
SYLLABLES = ("ka", "ri", "to", "mo", "na", "shi", "ya", "po", "lu", "ve", "ra", "ne", "zo", "fi")
TLDS = ("social", "com", "net", "org", "jp", "de", "xyz", "online", "club", "io", "fr", "uk")
WORDS = (
    "twitter",
    "mastodon",
    "bluesky",
    "left",
    "account",
    "server",
    "instance",
    "timeline",
    "post",
    "friends",
    "moving",
    "here",
    "finally",
    "welcome",
    "back",
    "migration",
    "blue",
    "check",
    "verified",
    "musk",
    "app",
    "feed",
    "follow",
    "block",
    "mute",
    "art",
    "japan",
    "mixi",
    "people",
    "talk",
    "news",
    "today",
    "really",
    "think",
    "new",
    "federation",
)


def dumps(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def domain(rng: random.Random) -> str:
    name = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
    return f"{rng.choice(('', 'mstdn.', 'social.', 'm.'))}{name}.{rng.choice(TLDS)}"


@dataclasses.dataclass
class Server:
    host: str
    family: str
    users: int
    active: float
    posts: int
    peers: int
    order: list[str]
    flaky: float
    dead: bool

    def grow(self, rng: random.Random) -> None:
        """Six hours of a live server: small ones often do not move at all."""
        self.users += int(self.users * 0.0006 * rng.random() * 2)
        self.posts += int(self.users * 0.01 * rng.random() * 2)

    @property
    def active_month(self) -> int:
        return int(self.users * self.active)


def make_fleet(count: int, rng: random.Random, pool: list[str]) -> list[Server]:
    servers = []
    names = [family for family, _ in FAMILIES]
    weights = [weight for _, weight in FAMILIES]
    for index in range(count):
        users = min(int(rng.lognormvariate(math.log(5000), 1.8)), 3_000_000)
        peers = min(int(rng.lognormvariate(math.log(8000), 0.9)), 80_000)
        order = rng.sample(pool, min(len(pool), int(peers * 1.5) + 400))  # a year of growth
        servers.append(
            Server(
                host=f"{domain(rng).split('.')[0]}{index}.example",
                family=rng.choices(names, weights)[0],
                users=max(users, 1),
                active=rng.uniform(0.05, 0.3),
                posts=users * rng.randint(20, 200),
                peers=peers,
                order=order,
                flaky=0.2 if rng.random() < 0.1 else 0.01,
                dead=index % 70 == 69,
            )
        )
    return servers


class Fediverse:
    def __init__(self, servers: list[Server], rng: random.Random, peers: bool = True) -> None:
        self.servers = servers
        self.rng = rng
        self.peers = peers
        self.daily: dict[str, tuple[date, bytes, bytes]] = {}
        self.listed: dict[str, tuple[int, bytearray]] = {}

    def results(self, at: datetime) -> list[TargetResult]:
        out = []
        for server in self.servers:
            server.grow(self.rng)
            if server.dead or self.rng.random() < server.flaky:
                failed = Fetched(
                    "robots.txt",
                    f"https://{server.host}/robots.txt",
                    at,
                    error_kind="connect_timeout",
                    error_detail="no answer in 20 s",
                )
                failure = Failure("connect_timeout", "no answer in 20 s")
                out.append(
                    TargetResult("fediverse", server.host, "failed", at, [failed], failure=failure)
                )
                continue
            out.append(self._target(server, at))
        return out

    def _target(self, server: Server, at: datetime) -> TargetResult:
        base = f"https://{server.host}"
        fetched = [Fetched("robots.txt", base + "/robots.txt", at, status=200, body=ROBOTS)]
        fetched.append(
            Fetched(
                "nodeinfo_links",
                base + "/.well-known/nodeinfo",
                at,
                status=200,
                body=dumps(pl.wellknown(base, "2.0")),
            )
        )
        users, active, posts = server.users, server.active_month, server.posts
        metrics = {"users_total": users, "posts_total": posts, "registrations_open": 1}
        if server.family == "mastodon":
            nodeinfo = pl.mastodon_nodeinfo(users, active, int(active * 1.8), posts)
            instance = pl.mastodon_instance_v2(active)
            instance["domain"] = server.host
            activity, peers = self._daily(server, at)
            fetched += [
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
            ]
            metrics |= {"users_active_month": active, "users_active_halfyear": int(active * 1.8)}
            if self.peers:
                url = base + "/api/v1/instance/peers"
                fetched.append(Fetched("mastodon_peers", url, at, status=200, body=peers))
                metrics["peers_total"] = server.peers
        elif server.family == "misskey":
            fetched += [
                Fetched(
                    "nodeinfo",
                    base + "/nodeinfo/2.1",
                    at,
                    status=200,
                    body=dumps(pl.misskey_nodeinfo(users, posts)),
                ),
                Fetched(
                    "misskey_stats",
                    base + "/api/stats",
                    at,
                    method="POST",
                    status=200,
                    body=dumps(pl.misskey_stats(users, posts, server.peers)),
                ),
            ]
            metrics |= {"comments_total": 0, "peers_total": server.peers}
        elif server.family == "lemmy":
            comments = posts * 4
            counts = {
                "users": users,
                "posts": posts,
                "comments": comments,
                "users_active_month": active,
                "users_active_day": active // 9,
            }
            fetched += [
                Fetched(
                    "nodeinfo",
                    base + "/nodeinfo/2.1",
                    at,
                    status=200,
                    body=dumps(pl.lemmy_nodeinfo(users, active, active * 2, posts, comments)),
                ),
                Fetched(
                    "lemmy_site",
                    base + "/api/v3/site",
                    at,
                    status=200,
                    body=dumps(pl.lemmy_site(counts)),
                ),
            ]
            metrics |= {
                "comments_total": comments,
                "users_active_month": active,
                "users_active_day": active // 9,
            }
        else:
            document = pl.payload(NODEINFO_FILE[server.family])
            document["usage"] = {
                "users": {"total": users, "activeMonth": active},
                "localPosts": posts,
            }
            fetched.append(
                Fetched("nodeinfo", base + "/nodeinfo/2.0", at, status=200, body=dumps(document))
            )
            metrics["users_active_month"] = active
        observations = [
            Observation(server.family, server.host, m, v, at) for m, v in metrics.items()
        ]
        if server.family == "mastodon":
            observations += self._weeks(server, at)
        parsed = Parsed(observations, [], server.family, server.family, "4.3.2")
        return TargetResult("fediverse", server.host, "ok", at, fetched, parsed)

    def _daily(self, server: Server, at: datetime) -> tuple[bytes, bytes]:
        """Activity and peers change once a day: Mastodon caches both for a day."""
        cached = self.daily.get(server.host)
        if cached and cached[0] == at.date():
            return cached[1], cached[2]
        server.peers = min(len(server.order), server.peers + max(1, server.peers // 1000))
        rows = [
            (
                server.users // 5 + self.rng.randint(0, 99),
                server.active_month // 3,
                self.rng.randint(0, 40),
            )
            for _ in range(12)
        ]
        activity = dumps(pl.aligned_activity(at, rows))
        peers = self._peer_list(server) if self.peers else b""
        self.daily[server.host] = (at.date(), activity, peers)
        return activity, peers

    def _peer_list(self, server: Server) -> bytes:
        """The JSON array of the first `server.peers` domains, extended day by day."""
        count, listed = self.listed.get(server.host, (0, bytearray()))
        for name in server.order[count : server.peers]:
            listed += b',"' + name.encode() + b'"' if listed else b'"' + name.encode() + b'"'
        self.listed[server.host] = (max(count, min(server.peers, len(server.order))), listed)
        return b"[" + bytes(listed) + b"]"

    def _weeks(self, server: Server, at: datetime) -> list[Observation]:
        monday = (at - timedelta(days=at.weekday())).replace(hour=0, minute=0, second=0)
        return [
            Observation(
                "mastodon",
                server.host,
                metric,
                value,
                monday - timedelta(weeks=w),
                "week",
                replace=False,
            )
            for w in range(1, 12)
            for metric, value in (
                ("statuses", server.users // 5),
                ("logins", server.active_month // 3),
                ("registrations", 10),
            )
        ]


class Relay:
    """bsky.network's listHosts: big shards move every run, small PDSes rarely."""

    def __init__(self, hosts: int, rng: random.Random) -> None:
        self.rng = rng
        self.hosts: list[dict[str, Any]] = []
        for index in range(hosts):
            self._add(index)

    def _add(self, index: int) -> None:
        rng = self.rng
        big = index < 100
        self.hosts.append(
            {
                "accountCount": rng.randint(200_000, 400_000)
                if big
                else int(rng.lognormvariate(math.log(3), 1.5)),
                "hostname": f"{domain(rng).split('.')[0]}.us-east.host.bsky.network"
                if big
                else f"pds.{domain(rng)}",
                "seq": rng.randint(10**6, 10**10) if big else rng.randint(10, 10**6),
                "status": "active"
                if big or rng.random() < 0.8
                else rng.choice(("idle", "offline", "throttled")),
            }
        )

    def results(self, at: datetime) -> list[TargetResult]:
        rng = self.rng
        for _ in range(rng.randint(0, 1)):
            self._add(len(self.hosts))
        for index, host in enumerate(self.hosts):
            if index < 100:
                host["accountCount"] += rng.randint(100, 3000)
                host["seq"] += rng.randint(10**5, 10**6)
            elif rng.random() < 0.02:
                host["accountCount"] += 1
                host["seq"] += rng.randint(1, 500)
        base = "https://bsky.network/xrpc/com.atproto.sync.listHosts?limit=1000"
        fetched = []
        for page in range(0, len(self.hosts) + 1, 1000):
            chunk = self.hosts[page : page + 1000]
            body: dict[str, Any] = {"hosts": chunk}
            if len(chunk) == 1000:
                body = {"cursor": str(page + 1000), **body}
            url = base + (f"&cursor={page}" if page else "")
            fetched.append(Fetched("listHosts", url, at, status=200, body=dumps(body)))
        observations = [
            Observation("bluesky", h["hostname"], "users_total", h["accountCount"], at)
            for h in self.hosts
        ]
        active = [h["accountCount"] for h in self.hosts if h["status"] == "active"]
        observations += [
            Observation("bluesky", "bsky.network", "users_total", sum(active), at),
            Observation("bluesky", "bsky.network", "servers_total", len(active), at),
        ]
        parsed = Parsed(observations, [], "bluesky")
        return [TargetResult("bluesky", "bsky.network", "ok", at, fetched, parsed)]


ARTICLES = [("en.wikipedia", f"Article_{n}") for n in range(10)] + [
    ("ja.wikipedia", f"記事_{n}") for n in range(9)
]


def wikipedia(at: datetime, first: bool, rng: random.Random) -> list[TargetResult]:
    end = at.date() - timedelta(days=1)
    begin = date(2022, 1, 1) if first else end - timedelta(days=2)
    out = []
    for wiki, title in ARTICLES:
        days = [begin + timedelta(days=d) for d in range((end - begin).days + 1)]
        views = {day: rng.randint(200, 60_000) for day in days}
        items = [
            {
                "project": wiki,
                "article": title,
                "granularity": "daily",
                "timestamp": f"{d:%Y%m%d}00",
                "access": "all-access",
                "agent": "user",
                "views": v,
            }
            for d, v in views.items()
        ]
        url = (
            f"https://wikimedia.org/api/rest_v1/metrics/pageviews/per-article/{wiki}/"
            f"all-access/user/{title}/daily/{begin:%Y%m%d}/{end:%Y%m%d}"
        )
        fetched = [Fetched("pageviews", url, at, status=200, body=dumps({"items": items}))]
        target = f"{wiki}/{title}"
        observations = [
            Observation(
                "mastodon",
                target,
                "pageviews",
                v,
                datetime.combine(d, datetime.min.time(), UTC),
                "day",
            )
            for d, v in views.items()
        ]
        out.append(TargetResult("wikipedia", target, "ok", at, fetched, Parsed(observations)))
    return out


def joinmastodon(at: datetime, rng: random.Random) -> list[TargetResult]:
    first = date(2022, 9, 30)
    days = (at.date() - first).days
    window = [
        {
            "period": f"{first + timedelta(days=d)}T00:00:00.000+00:00",
            "server_count": str(9000 + d * 3),
            "user_count": str(8_000_000 + d * 4000 + rng.randint(0, 999)),
            "active_user_count": str(900_000 + rng.randint(0, 99_999)),
        }
        for d in range(days)
    ]
    fetched = [
        Fetched(
            "statistics",
            "https://api.joinmastodon.org/statistics",
            at,
            status=200,
            body=dumps(window),
        )
    ]
    observations = [
        Observation(
            "mastodon",
            "joinmastodon",
            metric,
            int(row[key]),
            datetime.fromisoformat(row["period"][:10]).replace(tzinfo=UTC),
        )
        for row in window
        for metric, key in (
            ("servers_total", "server_count"),
            ("users_total", "user_count"),
            ("users_active_month", "active_user_count"),
        )
    ]
    return [TargetResult("joinmastodon", "joinmastodon", "ok", at, fetched, Parsed(observations))]


TAGS = {"twitter": 50, "mastodon": 10, "twitter migration": 1, "bluesky": 20}
"""Pages of 20 posts a day (the busy tags hit the 50-page cap)."""


def tumblr(at: datetime, first: bool, rng: random.Random) -> list[TargetResult]:
    sample = pl.payload("tumblr/tagged.json")
    post = sample["response"][0]
    out = []
    for tag, pages in TAGS.items():
        fetched = []
        for page in range(min(50, pages * (30 if first else 1))):
            posts = []
            for _ in range(20):
                item = dict(post)
                number = rng.randint(7 * 10**11, 8 * 10**11)
                item |= {
                    "id": number,
                    "id_string": str(number),
                    "timestamp": int(at.timestamp()) - rng.randint(0, 86400),
                    "blog_name": domain(rng).split(".")[0],
                    "summary": " ".join(rng.choices(WORDS, k=rng.randint(3, 12))),
                    "body": "<p>" + " ".join(rng.choices(WORDS, k=rng.randint(10, 80))) + "</p>",
                    "note_count": rng.randint(0, 5000),
                    "tags": rng.sample(WORDS, 4),
                }
                posts.append(item)
            url = f"https://api.tumblr.com/v2/tagged?tag={tag}&limit=20&page={page}"
            body = dumps({"meta": sample["meta"], "response": posts})
            fetched.append(Fetched("tagged", url, at, status=200, body=body))
        day = datetime.combine(at.date() - timedelta(days=1), datetime.min.time(), UTC)
        observation = Observation("tumblr", f"tag:{tag}", "tagged_posts", pages * 20, day, "day")
        out.append(TargetResult("tumblr", f"tag:{tag}", "ok", at, fetched, Parsed([observation])))
    info = pl.payload("tumblr/blog_info.json")
    info["response"]["blog"]["posts"] = 5000 + (at - START).days
    fetched = [
        Fetched(
            "blog_info",
            "https://api.tumblr.com/v2/blog/staff/info",
            at,
            status=200,
            body=dumps(info),
        )
    ]
    observation = Observation("tumblr", "blog:staff", "posts_total", 5000 + (at - START).days, at)
    out.append(TargetResult("tumblr", "blog:staff", "ok", at, fetched, Parsed([observation])))
    return out


def without_bodies(results: list[TargetResult]) -> list[TargetResult]:
    return [
        dataclasses.replace(r, fetched=[dataclasses.replace(f, body=None) for f in r.fetched])
        for r in results
    ]


def size_mb(path: Path) -> float:  # the file and its WAL
    wal = path.with_name(path.name + "-wal")
    return (path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)) / 1e6


def checkpoint(store: Store) -> None:
    with store.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


class ArchiveOnce:
    """zlib for the Store that compresses each distinct body once per process.

    The Store compresses every body it is handed, also one it archived six hours
    before (Mastodon serves /activity and /peers from a one-day cache, so the same
    body comes four times a day). The bytes are the same each time, so the database
    is exactly what the tracker writes; the simulation just skips the repeated work.
    """

    def __init__(self) -> None:
        self.known: dict[tuple[int, int], bytes] = {}

    def compress(self, data: bytes, level: int = -1) -> bytes:
        key = (len(data), hash(data))
        packed = self.known.get(key)
        if packed is None:
            if len(self.known) > 5000:
                self.known.clear()
            packed = self.known[key] = zlib.compress(data, level)
        return packed

    decompress = staticmethod(zlib.decompress)


def simulate(kind: str, args: argparse.Namespace, folder: Path) -> list[tuple[str, float]]:
    """One database through the year; returns (month, MB) at the end of each month."""
    if kind == "archive":
        store_module.zlib = ArchiveOnce()  # type: ignore[assignment]
    rng = random.Random(20221027)  # both databases get exactly the same year
    pool = sorted({domain(rng) for _ in range(160_000)})
    fleet = Fediverse(make_fleet(args.instances, rng, pool), rng, peers=args.peers)
    relay = Relay(args.hosts, rng)
    path = folder / f"{kind}.db"
    for leftover in folder.glob(path.name + "*"):
        leftover.unlink()
    store = Store(open_database(f"sqlite:///{path}"))
    started = time.monotonic()
    sizes = []
    month = START.month
    for slot in range(args.days * 4):
        at = START + timedelta(hours=6 * slot)
        jobs = [("fediverse", fleet.results(at)), ("bluesky", relay.results(at))]
        if at.hour == 0:
            first = slot == 0
            jobs += [
                ("joinmastodon", joinmastodon(at, rng)),
                ("wikipedia", wikipedia(at, first, rng)),
                ("tumblr", tumblr(at, first, rng)),
            ]
        for name, results in jobs:
            written = results if kind == "archive" else without_bodies(results)
            run_id = store.start_run(name, at)
            store.write_targets(run_id, written)
            store.finish_run(run_id, at + timedelta(minutes=3), "ok", {"targets_ok": len(written)})
        following = at + timedelta(hours=6)
        if following.month != month or slot == args.days * 4 - 1:
            checkpoint(store)
            sizes.append((f"{at:%Y-%m}", size_mb(path)))
            if kind == "archive":
                print(f"  {at:%Y-%m} simulated ({time.monotonic() - started:.0f} s)", flush=True)
            month = following.month
    if kind == "archive":
        end = START + timedelta(days=args.days)
        summary = prune_payloads(store.engine, end - timedelta(days=90))
        sizes.append(("pruned", size_mb(path)))
        sizes.append(("removed", float(summary.payloads)))
        with store.engine.connect() as connection:
            for table in ("runs", "attempts", "fetches", "payloads", "series", "points"):
                count = connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
                sizes.append((f"rows {table}", float(count or 0)))
    store.engine.dispose()
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--hosts", type=int, default=3000)
    parser.add_argument(
        "--peers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fediverse `peers: true` (the default config) fetches each Mastodon peer list",
    )
    parser.add_argument("--keep", type=Path, help="keep the two databases in this folder")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="tracker-growth-"))
    folder.mkdir(parents=True, exist_ok=True)
    command = (
        f".venv/bin/python bench/growth.py --days {args.days} --instances {args.instances} "
        f"--hosts {args.hosts} {'--peers' if args.peers else '--no-peers'}"
    )
    print(f"command: {command}", flush=True)
    started = time.monotonic()
    # The two databases are written by two processes (two cores), from the same seed.
    with multiprocessing.get_context("fork").Pool(2) as workers:
        archive, bare = workers.starmap(
            simulate, [("archive", args, folder), ("bare", args, folder)]
        )
    extra = dict(archive[len(bare) :])
    print("| month | with the archive (MB) | without (MB) |")
    print("|---|---:|---:|")
    for (month, with_archive), (_, without) in zip(archive, bare, strict=False):
        print(f"| {month} | {with_archive:,.1f} | {without:,.1f} |")
    print(
        f"after `tracker db prune --payloads-older-than 90d` and VACUUM at the end: "
        f"{extra['pruned']:,.1f} MB ({extra['removed']:,.0f} payloads removed)"
    )
    rows = {k.removeprefix("rows "): v for k, v in extra.items() if k.startswith("rows ")}
    print(f"rows after {args.days} days: " + ", ".join(f"{t} {n:,.0f}" for t, n in rows.items()))
    print(f"took {time.monotonic() - started:.0f} s; databases in {folder}")


if __name__ == "__main__":
    main()
