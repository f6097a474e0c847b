"""A simulated fediverse: servers on 127.0.0.1 that link to each other, for the crawl.

`make_graph(count, seed)` builds, deterministically from the seed, `count` servers
named `127.0.0.1:<port>`, each with a software (mostly Mastodon; Misskey, Lemmy,
Pleroma, Akkoma, GoToSocial, Friendica, Hubzilla), the numbers its NodeInfo
publishes, a robots.txt, and a peer list of about 20 entries served in its
software's own shape (Mastodon/Pleroma/Akkoma `GET /api/v1/instance/peers`,
Misskey `POST /api/federation/instances` paged by `{limit, offset}`, Lemmy
`GET /api/v3/federated_instances`). A peer list mixes real neighbours, duplicates
(the same name again, or spelled `https://…/`, `…/about`, with a trailing dot,
userinfo or padding) and junk that a crawler must drop without contacting
anything: loopback IP literals other than 127.0.0.1 and `localhost` (each aimed at
a deny probe's port), single labels, invalid names, names over 253 characters,
non-strings. No entry names anything that needs DNS, a private-range or a public
address.

Behaviours (shares in `Mix`): dead (nothing listens), hostile on every request
(hang, 5xx, garbage JSON, a slow drip), 410 on NodeInfo (well-known or document),
robots.txt keeping us out (all agents, our User-Agent, or the API paths), a
NodeInfo privacy flag (Friendica `metadata.private`, Hubzilla
`metadata.hide_in_statistics`), the peer list switched off (404), and healthy.
Islands are healthy servers nobody links to; shadows are healthy servers linked
only from opted-out servers' peer lists (found only by a crawler that follows an
opted-out server's peers). Every other server hangs off the seeds through
followable servers, so `Graph.reachable()` is everything but islands and shadows.

`Graph.reachable(seeds)` and `Graph.measurable(seeds)` are computed from these
definitions alone, never by the code under test. `serve_graph_in_thread()` serves
a small graph from `tests.support.loopback.Loopback` for the end-to-end test;
`bench/crawl_fleet.py` serves a big one from several processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from tests.support import payloads as pl
from tests.support.loopback import (
    Loopback,
    Reply,
    Request,
    Site,
    dead_url,
    probe_connections,
    start_probes,
)

HOST = "127.0.0.1"
PORT_BASE = 2000
"""Default first port: the bench's servers take 2000.. (below the ephemeral range)."""

PEER_API = {
    "mastodon": "mastodon",
    "pleroma": "mastodon",  # Pleroma and Akkoma implement /api/v1/instance/peers
    "akkoma": "mastodon",
    "misskey": "misskey",
    "lemmy": "lemmy",
}
"""Which peer-list shape each software serves; the others publish none (404)."""

PEERS_PATH = {
    "mastodon": ("GET", "/api/v1/instance/peers"),
    "misskey": ("POST", "/api/federation/instances"),
    "lemmy": ("GET", "/api/v3/federated_instances"),
}

MISSKEY_PAGE = 100
"""Most objects one `federation/instances` request returns (Misskey's own maximum)."""

HOSTILE = ("hang", "error", "garbage", "drip")
OPTED_OUT = ("gone", "gone_document", "robots", "private")
BEHAVIOURS = ("ok", "peers_off", "dead", *HOSTILE, *OPTED_OUT)
MEASURED = frozenset({"ok", "peers_off"})
"""Behaviours that end with statistics stored (robots allowing, NodeInfo 200, not private)."""

ROBOTS = {
    "allow": "User-agent: *\nDisallow: /media_proxy/\nDisallow: /interact/\n",
    "disallow_all": "User-agent: *\nDisallow: /\n",
    "disallow_us": (
        "User-agent: GPTBot\nDisallow: /\n\n"
        "User-agent: tracker\nDisallow: /\n\n"
        "User-agent: *\nDisallow: /media_proxy/\n"
    ),
    "disallow_api": "User-agent: *\nDisallow: /api/\nDisallow: /nodeinfo/\n",
}
"""robots.txt bodies; `none` (not in here) answers 404, which RFC 9309 reads as no rules."""

NEIGHBOUR_SPELLINGS = (
    "https://{name}",
    "http://{name}/",
    "HTTPS://{name}/",
    "{name}/about",
    "https://{name}/@admin",
    "127.0.0.1.:{port}",
    " {name}\n",
    "admin@{name}",
)
"""Other spellings of a neighbour that normalise to it (trim, scheme, path, userinfo,
trailing dot). Only ever added next to the plain name, so the reachable set does
not depend on how a crawler reads them."""

DENY_JUNK = (
    "127.0.0.2:{alt}",
    "https://127.0.0.2:{alt}/",
    "[::1]:{v6}",
    "localhost:{lo}",
    "LOCALHOST:{lo}",
    "localhost.:{lo}",
    "0.0.0.0:{lo}",
    "[::ffff:127.0.0.1]:{lo}",
    "127.1:{lo}",
)
"""Loopback targets the address rule refuses while `allow_hosts` is `[127.0.0.1]`, each
aimed at a deny probe (`alt` on 127.0.0.2, `v6` on ::1, `lo` on 127.0.0.1): the
loopback ones of `loopback.DENY_SPELLINGS` and a few more spellings. `127.1` is IPv4
shorthand the resolver reads without DNS (an IP literal, not a name)."""

SYNTAX_JUNK: tuple[str, ...] = (
    "nodots",
    "NoDots",
    "nodots:8080",
    "-bad-.x",
    "bad_name!.x",
    "a..b",
    "*.wild.x",
    "exa mple.x",
    "",
    "   ",
    "https://",
    ".".join(["a" * 60] * 5) + ".x",  # 307 characters: too long for a host name
)
"""Text that is no host name at all: dropped before any look-up."""

OTHER_JUNK: tuple[Any, ...] = (42, None, True, {"host": "nodots"}, ["nodots"])
"""Non-text entries (Mastodon arrays only; Misskey/Lemmy carry them as `host`/`domain`)."""


@dataclass(frozen=True)
class Mix:
    """Shares of each kind of server (of `count`); every kind appears at least once
    from 60 servers on. Seeds are always healthy."""

    dead: float = 0.05
    hang: float = 0.0125
    error: float = 0.0125
    garbage: float = 0.0125
    drip: float = 0.0125
    gone: float = 0.01
    gone_document: float = 0.01
    robots: float = 0.02
    private: float = 0.01
    peers_off: float = 0.02
    islands: float = 0.02
    shadows: float = 0.01
    hubs: float = 0.1
    """Share of healthy Misskey servers listing more than one page (100) of instances."""
    no_robots: float = 0.2
    """Share of healthy servers without robots.txt (404)."""
    software: tuple[tuple[str, float], ...] = (
        ("mastodon", 0.72),
        ("misskey", 0.08),
        ("lemmy", 0.07),
        ("pleroma", 0.04),
        ("akkoma", 0.03),
        ("gotosocial", 0.05),
        ("friendica", 0.01),
    )


@dataclass(frozen=True)
class Answer:
    """What a simulated server answers (before the graph's latency)."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/json; charset=utf-8"
    hang: bool = False
    """Accept the request and never answer."""
    drip: float | None = None
    """Seconds between single bytes of the body."""


NOT_FOUND = Answer(404, b'{"error":"Record not found"}')


@dataclass(frozen=True)
class Server:
    index: int
    port: int
    software: str
    behaviour: str
    role: str
    """`main` (hangs off the seeds), `island` (nobody links to it), `shadow` (linked
    only from opted-out servers)."""
    robots: str
    """A key of `ROBOTS`, or `none` (404)."""
    users: int
    active_month: int
    active_halfyear: int
    posts: int
    comments: int
    peers: tuple[Any, ...] = ()
    """The entries its peer list serves, in order (names, spellings, junk)."""
    neighbours: tuple[str, ...] = ()
    """The graph servers its peer list names (plain `127.0.0.1:port`), no repeats."""
    junk: tuple[Any, ...] = ()
    """The junk entries among `peers`."""
    drip: float = 1.0
    """Seconds per byte of a `drip` server."""

    @property
    def name(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.name}"

    @property
    def listening(self) -> bool:
        return self.behaviour != "dead"

    @property
    def peer_api(self) -> str | None:
        return PEER_API.get(self.software)

    @property
    def follows(self) -> bool:
        """A correct crawler reads this server's peers (it answers them, not opted out)."""
        return self.behaviour == "ok" and self.peer_api is not None

    @property
    def measured(self) -> bool:
        return self.behaviour in MEASURED

    def expected_requests(self) -> list[tuple[str, str, bytes]]:
        """(method, path, body) a correct crawler sends, in order, on a quiet network."""
        robots = ("GET", "/robots.txt", b"")
        if self.behaviour in ("dead", "hang", "error", "drip", "robots"):
            return [robots]  # refused, unanswered, 5xx (keep out), or disallowed
        wellknown = ("GET", "/.well-known/nodeinfo", b"")
        if self.behaviour in ("garbage", "gone"):
            return [robots, wellknown]
        plan = [robots, wellknown, ("GET", self.nodeinfo_paths()[0], b"")]
        if self.behaviour in ("gone_document", "private") or self.peer_api is None:
            return plan
        method, path = PEERS_PATH[self.peer_api]
        if self.peer_api != "misskey":
            return [*plan, (method, path, b"")]
        listed = len(self.peers) if self.behaviour == "ok" else 0
        pages = listed // MISSKEY_PAGE + 1
        return plan + [
            (
                method,
                path,
                json.dumps({"limit": MISSKEY_PAGE, "offset": page * MISSKEY_PAGE}).encode(),
            )
            for page in range(pages)
        ]

    def nodeinfo_paths(self) -> tuple[str, ...]:
        """The NodeInfo documents its well-known lists, newest schema first."""
        return _NODEINFO_PATHS[self.software]

    def answer(self, method: str, path: str, body: bytes = b"") -> Answer:
        """The reply to one request, for any server of the fleet or the loopback."""
        if self.behaviour == "hang":
            return Answer(hang=True)
        if self.behaviour == "error":
            status = (500, 502, 503)[self.index % 3]
            return Answer(status, b"<html><body>busy</body></html>", "text/html")
        if self.behaviour == "garbage":
            return Answer(
                200, b'{"links": [{"rel": "http://nodeinfo.dia\x00\xff', "application/json"
            )
        answer = self._answer(method, path, body)
        if self.behaviour == "drip":
            return Answer(answer.status, answer.body, answer.content_type, drip=self.drip)
        return answer

    def _answer(self, method: str, path: str, body: bytes) -> Answer:
        if path == "/robots.txt":
            if method != "GET" or self.robots == "none":
                return NOT_FOUND
            return Answer(200, ROBOTS[self.robots].encode(), "text/plain; charset=utf-8")
        if path == "/.well-known/nodeinfo":
            if self.behaviour == "gone":
                return Answer(410, b"", None)
            return _json(_wellknown(self))
        if path in self.nodeinfo_paths() and method == "GET":
            if self.behaviour == "gone_document":
                return Answer(410, b"", None)
            return _json(_nodeinfo(self, path))
        api = self.peer_api
        if api is not None and (method, path) == PEERS_PATH[api]:
            if self.behaviour == "peers_off":
                return Answer(404, b"", None)
            if api == "misskey":
                return _misskey_page(self, body)
            if api == "lemmy":
                return _json(_lemmy_instances(self))
            return _json(list(self.peers))
        return self._extras(method, path)

    def _extras(self, method: str, path: str) -> Answer:
        """The software's own statistics APIs (what `tracker collect` reads)."""
        family = self.software
        if family == "mastodon" and method == "GET":
            if path == "/api/v2/instance":
                return _json(pl.mastodon_instance_v2(self.active_month))
            if path == "/api/v1/instance":
                return _json(pl.mastodon_instance_v1(self.users, self.posts, len(self.neighbours)))
            if path == "/api/v1/instance/activity":
                rows = [(100 + i, 50 + i, 10 + i) for i in range(12)]
                return _json(pl.aligned_activity(datetime.now(UTC), rows))
        if family == "misskey" and (method, path) == ("POST", "/api/stats"):
            return _json(pl.misskey_stats(self.users, self.posts, len(self.neighbours)))
        if family == "lemmy" and (method, path) == ("GET", "/api/v3/site"):
            return _json(pl.lemmy_site({"users": self.users, "posts": self.posts}))
        if family == "misskey":
            return Answer(404, json.dumps(_MISSKEY_NO_SUCH_ENDPOINT).encode())
        return NOT_FOUND


@dataclass
class Graph:
    servers: list[Server]
    seeds: list[str]
    """Names (`127.0.0.1:port`) of the seed servers."""
    latency: float = 0.1
    """Seconds before every answer."""
    deny_ports: dict[str, int] = field(default_factory=dict)
    """The deny probes' ports the junk aims at (`alt` 127.0.0.2, `v6` ::1, `lo` 127.0.0.1)."""
    _by_name: dict[str, Server] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name = {server.name: server for server in self.servers}

    def __len__(self) -> int:
        return len(self.servers)

    def __getitem__(self, name: str) -> Server:
        return self._by_name[_plain(name)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _plain(name) in self._by_name

    @property
    def names(self) -> set[str]:
        return set(self._by_name)

    @property
    def seed_urls(self) -> list[str]:
        """The seeds as config entries (`http://127.0.0.1:port`: the fleet speaks plain HTTP)."""
        return [f"http://{name}" for name in self.seeds]

    @property
    def islands(self) -> set[str]:
        return {server.name for server in self.servers if server.role == "island"}

    @property
    def shadows(self) -> set[str]:
        return {server.name for server in self.servers if server.role == "shadow"}

    def reachable(self, seeds: Iterable[str] | None = None) -> set[str]:
        """Every server a correct crawl from `seeds` finds: breadth-first through the
        peer lists of servers that answer theirs and have not opted out."""
        return set(self.crawl_order(seeds))

    def crawl_order(self, seeds: Iterable[str] | None = None) -> list[str]:
        """The reachable servers in breadth-first order (seeds first)."""
        start = [_plain(seed) for seed in (self.seeds if seeds is None else seeds)]
        order = list(dict.fromkeys(name for name in start if name in self._by_name))
        found = set(order)
        queue = deque(order)
        while queue:
            server = self._by_name[queue.popleft()]
            if not server.follows:
                continue
            for name in server.neighbours:
                if name not in found:
                    found.add(name)
                    order.append(name)
                    queue.append(name)
        return order

    def measurable(self, seeds: Iterable[str] | None = None) -> set[str]:
        """The reachable servers that should end with statistics stored."""
        return {name for name in self.reachable(seeds) if self._by_name[name].measured}

    def unreachable(self, seeds: Iterable[str] | None = None) -> set[str]:
        return self.names - self.reachable(seeds)

    def kinds(self) -> Counter[str]:
        """How many servers of each behaviour and role (for a bench's header line)."""
        counts: Counter[str] = Counter(server.behaviour for server in self.servers)
        counts.update(server.role for server in self.servers if server.role != "main")
        return counts

    def junk(self) -> Counter[str]:
        """Junk entries served across all peer lists, by spelling (before formatting)."""
        return Counter(repr(entry) for server in self.servers for entry in server.junk)


PortAllocator = Callable[[int, bool], int]
"""`allocate(index, listening) -> port`: binds (or reserves) the port of server `index`."""


def make_graph(
    count: int,
    seed: int = 1,
    *,
    seeds: int = 3,
    ports: Sequence[int] | PortAllocator | None = None,
    deny_ports: Mapping[str, int] | None = None,
    latency: float = 0.1,
    mix: Mix | None = None,
    drip: float = 1.0,
) -> Graph:
    """A deterministic graph of `count` servers (the same seed, the same graph).

    `ports`: one port per server in index order (default 2000, 2001, …), or a
    callable asked in index order once the behaviours are drawn (so a harness can
    bind a listening socket, or reserve a dead one, and name the server after it).
    `deny_ports`: where the deny probes listen (keys `alt`, `v6`, `lo`).
    """
    if count < seeds + 1 or seeds < 1:
        raise ValueError("a graph needs at least one seed and one other server")
    mix = mix or Mix()
    rng = random.Random(seed)
    plan = _plan(count, seeds, mix, rng)
    allocate = _allocator(ports, count)
    port_of = [allocate(index, plan[index].behaviour != "dead") for index in range(count)]
    if len(set(port_of)) != count:
        raise ValueError("two servers got the same port")
    deny = dict(deny_ports or {})
    spare = max(port_of) + 1
    for key in ("alt", "v6", "lo"):
        deny.setdefault(key, spare)
    _link(plan, seeds, mix, rng)
    servers = [_render(item, port_of, deny, rng, drip) for item in plan]
    return Graph(
        servers=servers,
        seeds=[servers[index].name for index in range(seeds)],
        latency=latency,
        deny_ports=deny,
    )


@dataclass
class _Planned:
    index: int
    software: str
    behaviour: str
    role: str = "main"
    robots: str = "allow"
    hub: bool = False
    neighbours: list[int] = field(default_factory=list)
    numbers: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)


def _plan(count: int, seeds: int, mix: Mix, rng: random.Random) -> list[_Planned]:
    behaviour, healthy = _behaviours(count, seeds, mix, rng)
    plan: list[_Planned] = []
    for index in range(count):
        kind = behaviour[index]
        item = _Planned(index, _software(index, kind, seeds, mix, rng), kind)
        if kind == "robots":
            item.robots = ("disallow_all", "disallow_us", "disallow_api")[index % 3]
        elif rng.random() < mix.no_robots and index >= seeds:
            item.robots = "none"
        users = max(1, min(2_000_000, int(rng.lognormvariate(4.5, 2.0))))
        month = max(0, int(users * rng.uniform(0.02, 0.5)))
        halfyear = min(users, int(month * rng.uniform(1.2, 2.5)))
        posts = users * rng.randint(3, 400)
        comments = posts * rng.randint(2, 8) if item.software == "lemmy" else 0
        item.numbers = (users, month, halfyear, posts, comments)
        plan.append(item)
    islands = round(mix.islands * count)
    shadows = round(mix.shadows * count)
    if count >= 60:
        islands, shadows = max(islands, 1), max(shadows, 1)
    for index in healthy[:islands]:
        plan[index].role = "island"
    for index in healthy[islands : islands + shadows]:
        plan[index].role = "shadow"
    return plan


def _behaviours(
    count: int, seeds: int, mix: Mix, rng: random.Random
) -> tuple[list[str], list[int]]:
    """Each server's behaviour (exact shares of `count`), and the healthy non-seeds
    in random order (islands and shadows are drawn from them)."""
    behaviour = ["ok"] * count
    pool = list(range(seeds, count))
    rng.shuffle(pool)
    taken = 0
    for kind in ("dead", *HOSTILE, *OPTED_OUT, "peers_off"):
        share: float = getattr(mix, kind)
        wanted = round(share * count)
        if share > 0 and count >= 60:
            wanted = max(wanted, 1)
        for index in pool[taken : taken + wanted]:
            behaviour[index] = kind
        taken += wanted
    return behaviour, pool[taken:]


def _software(index: int, kind: str, seeds: int, mix: Mix, rng: random.Random) -> str:
    if index < seeds:
        return ("mastodon", "misskey", "lemmy")[index % 3]
    if kind in ("gone", "gone_document", "robots"):
        return "mastodon"  # serves a peer list that only a wrong crawler would follow
    if kind == "private":
        return ("friendica", "hubzilla")[index % 2]
    if kind == "peers_off":
        return rng.choice(("mastodon", "mastodon", "mastodon", "pleroma", "lemmy"))
    names = [name for name, _ in mix.software]
    weights = [weight for _, weight in mix.software]
    return rng.choices(names, weights)[0]


def _link(plan: list[_Planned], seeds: int, mix: Mix, rng: random.Random) -> None:
    """Neighbours: a spanning tree from the seeds through followable servers (so every
    `main` server is reachable), then random extra links to `main` servers."""
    main = [item.index for item in plan if item.role == "main"]
    rest = [index for index in main if index >= seeds]
    rng.shuffle(rest)
    placed_followable = [index for index in range(seeds) if _follows(plan[index])]
    for index in rest:
        parent = rng.choice(placed_followable)
        plan[parent].neighbours.append(index)
        if _follows(plan[index]):
            placed_followable.append(index)
    for item in plan:
        if item.software == "misskey" and item.behaviour == "ok":
            item.hub = item.index < seeds or rng.random() < mix.hubs
    serving = ("ok", "gone", "gone_document", "robots")  # a peer list, followed or not
    listing = [item for item in plan if item.software in PEER_API and item.behaviour in serving]
    for item in listing:
        wanted = rng.randint(150, 250) if item.hub else rng.randint(10, 14)
        wanted = min(wanted, len(main) - 1)
        chosen = set(item.neighbours)
        attempts = 0
        while len(chosen) < wanted and attempts < wanted * 20:
            attempts += 1
            other = rng.choice(main)
            if other != item.index and other not in chosen:
                chosen.add(other)
                item.neighbours.append(other)
    opted_out = [item for item in listing if item.behaviour != "ok" and item.role == "main"]
    for item in plan:
        if item.role != "shadow":
            continue
        if opted_out:
            rng.choice(opted_out).neighbours.append(item.index)
        else:
            item.role = "island"  # no opted-out server to hide behind


def _follows(item: _Planned) -> bool:
    return item.behaviour == "ok" and item.software in PEER_API


def _render(
    item: _Planned, port_of: list[int], deny: Mapping[str, int], rng: random.Random, drip: float
) -> Server:
    names = [f"{HOST}:{port_of[index]}" for index in item.neighbours]
    entries: list[Any] = list(names)
    junk: list[Any] = []
    if names and not item.hub:
        for _ in range(rng.randint(2, 3)):
            pick = rng.randrange(len(names))
            spelling = rng.choice(("{name}", *NEIGHBOUR_SPELLINGS))
            entries.append(spelling.format(name=names[pick], port=port_of[item.neighbours[pick]]))
        choices: list[Any] = [*DENY_JUNK, *SYNTAX_JUNK]
        if PEER_API.get(item.software) == "mastodon":
            choices += OTHER_JUNK
        else:  # a Misskey `host` or Lemmy `domain` that is no string
            choices += [entry for entry in OTHER_JUNK if not isinstance(entry, dict | list)]
        for _ in range(rng.randint(3, 5)):
            entry = rng.choice(choices)
            if isinstance(entry, str):
                entry = entry.format(**deny)
            junk.append(entry)
        entries += junk
        rng.shuffle(entries)
    elif names:  # a hub: the junk and duplicates of a long list, in proportion
        for _ in range(len(names) // 5):
            entry = rng.choice((*DENY_JUNK, *SYNTAX_JUNK)).format(**deny)
            junk.append(entry)
        entries += junk + names[: len(names) // 10]
        rng.shuffle(entries)
    users, month, halfyear, posts, comments = item.numbers
    return Server(
        index=item.index,
        port=port_of[item.index],
        software=item.software,
        behaviour=item.behaviour,
        role=item.role,
        robots=item.robots,
        users=users,
        active_month=month,
        active_halfyear=halfyear,
        posts=posts,
        comments=comments,
        peers=tuple(entries),
        neighbours=tuple(dict.fromkeys(names)),
        junk=tuple(junk),
        drip=drip,
    )


def _allocator(ports: Sequence[int] | PortAllocator | None, count: int) -> PortAllocator:
    if callable(ports):
        return ports
    chosen = list(ports) if ports is not None else list(range(PORT_BASE, PORT_BASE + count))
    if len(chosen) < count:
        raise ValueError(f"{count} servers need {count} ports, got {len(chosen)}")
    return lambda index, _listening: chosen[index]


def _plain(name: str) -> str:
    return name.removeprefix("http://").removeprefix("https://").rstrip("/")


# --- payloads -------------------------------------------------------------------------

_NODEINFO_PATHS: dict[str, tuple[str, ...]] = {
    "mastodon": ("/nodeinfo/2.0",),
    "misskey": ("/nodeinfo/2.1", "/nodeinfo/2.0"),
    "lemmy": ("/nodeinfo/2.1",),
    "pleroma": ("/nodeinfo/2.1.json", "/nodeinfo/2.0.json"),
    "akkoma": ("/nodeinfo/2.1.json", "/nodeinfo/2.0.json"),
    "gotosocial": ("/nodeinfo/2.1", "/nodeinfo/2.0"),
    "friendica": ("/nodeinfo/2.0",),
    "hubzilla": ("/nodeinfo/2.0",),
}

_TEMPLATES = {
    "mastodon": "fediverse/nodeinfo/mastodon_2.0.json",
    "misskey": "fediverse/nodeinfo/misskey_2.1.json",
    "lemmy": "fediverse/nodeinfo/lemmy_2.1.json",
    "pleroma": "fediverse/nodeinfo/pleroma_2.0.json",
    "akkoma": "fediverse/nodeinfo/akkoma_2.1.json",
    "gotosocial": "fediverse/nodeinfo/gotosocial_2.1.json",
}

_MISSKEY_NO_SUCH_ENDPOINT = {
    "error": {
        "message": "No such endpoint.",
        "code": "NO_SUCH_ENDPOINT",
        "id": "7b61b4f4-8b37-44e3-b2c3-5e0d0d3a8a2a",
        "kind": "client",
    }
}

EPOCH = datetime(2023, 1, 1, tzinfo=UTC)


@cache
def _template(software: str) -> dict[str, Any]:
    if software in _TEMPLATES:
        document: dict[str, Any] = pl.payload(_TEMPLATES[software])
        return document
    # Friendica and Hubzilla: no fixture in tests/fixtures; reconstructed from
    # their NodeInfo 2.0 controllers (Friendica src/Module/NodeInfo210.php,
    # Hubzilla Zotlabs/Module/Nodeinfo.php), numbers set per server.
    protocols = ["activitypub", "diaspora", "dfrn"] if software == "friendica" else ["zot"]
    return {
        "version": "2.0",
        "software": {
            "name": software,
            "version": "2024.03-1549" if software == "friendica" else "9.0",
        },
        "protocols": protocols,
        "services": {"inbound": ["atom1.0", "rss2.0"], "outbound": ["atom1.0"]},
        "openRegistrations": True,
        "usage": {},
        "metadata": {"nodeName": f"A {software.title()} node"},
    }


def _nodeinfo(server: Server, path: str) -> dict[str, Any]:
    document = dict(_template(server.software))
    if server.software in ("misskey",):
        users: dict[str, Any] = {"total": server.users, "activeHalfyear": None, "activeMonth": None}
    elif server.software == "gotosocial":
        users = {"total": server.users}
    else:
        users = {
            "total": server.users,
            "activeHalfyear": server.active_halfyear,
            "activeMonth": server.active_month,
        }
    usage: dict[str, Any] = {"users": users, "localPosts": server.posts}
    if server.software in ("lemmy", "misskey", "friendica", "hubzilla"):
        usage["localComments"] = server.comments
    document["usage"] = usage
    version = "2.1" if "2.1" in path else "2.0"
    document["version"] = version
    metadata = dict(document.get("metadata") or {})
    if server.behaviour == "private":
        key = "private" if server.software == "friendica" else "hide_in_statistics"
        metadata[key] = True
    document["metadata"] = metadata
    return document


def _wellknown(server: Server) -> dict[str, Any]:
    schema = "http://nodeinfo.diaspora.software/ns/schema/"
    return {
        "links": [
            {"rel": schema + ("2.1" if "2.1" in path else "2.0"), "href": server.url + path}
            for path in server.nodeinfo_paths()
        ]
    }


def _misskey_page(server: Server, body: bytes) -> Answer:
    try:
        params = json.loads(body or b"{}")
        if not isinstance(params, dict):
            raise ValueError("not an object")
        limit = int(params.get("limit", 30))
        offset = int(params.get("offset", 0))
    except (ValueError, TypeError):
        error = {"error": {"message": "Invalid param.", "code": "INVALID_PARAM", "kind": "client"}}
        return Answer(400, json.dumps(error).encode())
    if not 1 <= limit <= MISSKEY_PAGE or offset < 0:
        error = {"error": {"message": "Invalid param.", "code": "INVALID_PARAM", "kind": "client"}}
        return Answer(400, json.dumps(error).encode())
    page = server.peers[offset : offset + limit]
    return _json([_misskey_instance(server, offset + i, host) for i, host in enumerate(page)])


def _misskey_instance(server: Server, position: int, host: Any) -> dict[str, Any]:
    """One `federation/instances` object (shape of Misskey's FederatedInstance pack)."""
    first = EPOCH + timedelta(hours=(server.index * 7 + position * 13) % 20000)
    return {
        "id": f"9{server.index:07x}{position:05x}",
        "firstRetrievedAt": first.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "host": host,
        "usersCount": position % 50,
        "notesCount": position * 17 % 5000,
        "followingCount": position % 7,
        "followersCount": position % 11,
        "isNotResponding": False,
        "isSuspended": False,
        "suspensionState": "none",
        "isBlocked": False,
        "softwareName": None,
        "softwareVersion": None,
        "openRegistrations": None,
        "name": None,
        "description": None,
        "maintainerName": None,
        "maintainerEmail": None,
        "isSilenced": False,
        "isMediaSilenced": False,
        "iconUrl": None,
        "faviconUrl": None,
        "themeColor": None,
        "infoUpdatedAt": None,
        "latestRequestReceivedAt": first.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }


def _lemmy_instances(server: Server) -> dict[str, Any]:
    linked = []
    for position, domain in enumerate(server.peers):
        published = EPOCH + timedelta(hours=(server.index * 5 + position * 11) % 20000)
        linked.append(
            {
                "id": position + 1,
                "domain": domain,
                "published": published.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "updated": None,
                "software": "mastodon" if isinstance(domain, str) else None,
                "version": "4.3.2" if isinstance(domain, str) else None,
            }
        )
    return {"federated_instances": {"linked": linked, "allowed": [], "blocked": []}}


def _json(document: Any) -> Answer:
    return Answer(200, json.dumps(document, ensure_ascii=False).encode("utf-8"))


# --- serving in-process (pytest) ------------------------------------------------------


def to_reply(answer: Answer, latency: float) -> Reply:
    """The loopback server's reply for an `Answer`, `latency` seconds late."""
    return Reply(
        answer.status,
        answer.body,
        content_type=answer.content_type,
        delay=latency,
        hang=answer.hang,
        drip=answer.drip,
    )


@dataclass
class ServedGraph:
    """A graph served by a `Loopback`, with the deny probes its junk aims at."""

    graph: Graph
    loopback: Loopback
    sites: dict[str, Site]
    """Listening servers by name."""
    probes: dict[str, Site]

    def probe_connections(self) -> dict[str, int]:
        """Connections any deny probe accepted (must stay empty)."""
        return probe_connections(self.probes)

    def contacted(self) -> set[str]:
        """Names of the listening servers that accepted at least one connection."""
        return {name for name, site in self.sites.items() if site.connections}

    def requests(self, name: str) -> list[Request]:
        return self.sites[name].requests


@contextlib.contextmanager
def serve_graph_in_thread(
    count: int = 200,
    seed: int = 1,
    *,
    loopback: Loopback | None = None,
    latency: float = 0.0,
    **options: Any,
) -> Iterator[ServedGraph]:
    """Serve `make_graph(count, seed, **options)` on kernel-assigned loopback ports.

    Starts the deny probes (127.0.0.2, ::1, 127.0.0.1) first, so the junk aims at
    them; dead servers get a reserved port nothing listens on. Uses `loopback` when
    given (its other sites stay up), else a private one closed on exit.
    """
    own = loopback is None
    servers = loopback if loopback is not None else Loopback()
    probes = start_probes(servers)
    sites: dict[int, Site] = {}
    built: dict[int, Server] = {}

    def dispatch(index: int) -> Callable[[Request], Reply]:
        def handle(request: Request) -> Reply:
            server = built[index]
            return to_reply(server.answer(request.method, request.path, request.body), latency)

        return handle

    def allocate(index: int, listening: bool) -> int:
        if not listening:
            return int(dead_url().rsplit(":", 1)[1])
        site = servers.add({"*": dispatch(index)})
        sites[index] = site
        return site.port

    try:
        graph = make_graph(
            count,
            seed,
            ports=allocate,
            deny_ports={name: site.port for name, site in probes.items()},
            latency=latency,
            **options,
        )
        built.update({server.index: server for server in graph.servers})
        yield ServedGraph(
            graph=graph,
            loopback=servers,
            sites={graph.servers[index].name: site for index, site in sites.items()},
            probes=probes,
        )
    finally:
        if own:
            servers.close()
        else:
            _stop_sites(servers, [*sites.values(), *probes.values()])


def _stop_sites(loopback: Loopback, sites: list[Site]) -> None:
    async def stop() -> None:
        for site in sites:
            if site.server is not None:
                site.server.close()

    asyncio.run_coroutine_threadsafe(stop(), loopback.loop).result(timeout=10)


def free_ports(count: int, start: int = PORT_BASE, stop: int = 32768) -> list[int]:
    """`count` ports in [start, stop) that nothing on 127.0.0.1 holds right now."""
    found: list[int] = []
    for port in range(start, stop):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
        found.append(port)
        if len(found) == count:
            return found
    raise RuntimeError(f"only {len(found)} free ports in {start}..{stop - 1}, {count} wanted")
