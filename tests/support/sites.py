"""Route tables of simulated fediverse servers, and the rows each should produce.

A `*Spec` holds the numbers a server publishes; `routes()` serves them in the
real payload shapes; `expected()` lists the observations a correct collector
stores, derived from the spec by hand (not by the parser under test).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support import payloads as pl
from tests.support.loopback import Reply, Request, Routes

Row = tuple[str, str, str, str, str, str, str]  # the export CSV columns, as text


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _base(request: Request) -> str:
    return f"http://{request.headers['host']}"


def wellknown_route(*versions: str) -> Any:
    return lambda request: Reply(body=pl.wellknown(_base(request), *versions))


@dataclass
class MastodonSpec:
    users: int = 1000
    active_month: int = 300
    active_halfyear: int = 600
    posts: int = 50000
    registrations_open: bool = True
    peers: list[str] = field(default_factory=lambda: ["a.example", "b.example", "c.example"])
    activity: list[tuple[int, int, int]] = field(
        default_factory=lambda: [(100 + i, 50 + i, 10 + i) for i in range(12)]
    )
    robots: str = "User-agent: *\nDisallow: /media_proxy/\n"

    def routes(self, now: datetime) -> Routes:
        return {
            "GET /robots.txt": Reply(body=self.robots, content_type="text/plain"),
            "GET /.well-known/nodeinfo": wellknown_route("2.0"),
            "GET /nodeinfo/2.0": Reply(
                body=pl.mastodon_nodeinfo(
                    self.users, self.active_month, self.active_halfyear, self.posts
                )
            ),
            "GET /api/v2/instance": Reply(
                body=pl.mastodon_instance_v2(self.active_month, self.registrations_open)
            ),
            "GET /api/v1/instance/activity": Reply(body=pl.aligned_activity(now, self.activity)),
            "GET /api/v1/instance/peers": Reply(body=self.peers),
        }

    def expected(self, target: str, now: datetime) -> set[Row]:
        at = iso(now)
        rows = {
            ("fediverse", "mastodon", target, "users_total", "", at, str(self.users)),
            ("fediverse", "mastodon", target, "users_active_month", "", at, str(self.active_month)),
            (
                "fediverse",
                "mastodon",
                target,
                "users_active_halfyear",
                "",
                at,
                str(self.active_halfyear),
            ),
            ("fediverse", "mastodon", target, "posts_total", "", at, str(self.posts)),
            (
                "fediverse",
                "mastodon",
                target,
                "registrations_open",
                "",
                at,
                str(int(self.registrations_open)),
            ),
            ("fediverse", "mastodon", target, "peers_total", "", at, str(len(set(self.peers)))),
        }
        monday = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0)
        for weeks_ago, (statuses, logins, registrations) in enumerate(self.activity):
            if weeks_ago == 0:
                continue  # the current week is partial and not stored
            week = iso(monday - timedelta(weeks=weeks_ago))
            rows |= {
                ("fediverse", "mastodon", target, "statuses", "week", week, str(statuses)),
                ("fediverse", "mastodon", target, "logins", "week", week, str(logins)),
                (
                    "fediverse",
                    "mastodon",
                    target,
                    "registrations",
                    "week",
                    week,
                    str(registrations),
                ),
            }
        return rows


@dataclass
class MisskeySpec:
    users: int = 700
    notes: int = 90000
    instances: int = 4000

    def routes(self) -> Routes:
        return {
            "GET /.well-known/nodeinfo": wellknown_route("2.0", "2.1"),
            "GET /nodeinfo/2.1": Reply(body=pl.misskey_nodeinfo(self.users, self.notes)),
            "GET /nodeinfo/2.0": Reply(404, {"error": "use 2.1"}),
            "POST /api/stats": lambda request: (
                Reply(body=pl.misskey_stats(self.users, self.notes, self.instances))
                if request.body.strip() in (b"{}", b"")
                else Reply(400, {"error": {"message": "bad body"}})
            ),
        }

    def expected(self, target: str, now: datetime) -> set[Row]:
        at = iso(now)
        return {
            ("fediverse", "misskey", target, "users_total", "", at, str(self.users)),
            ("fediverse", "misskey", target, "posts_total", "", at, str(self.notes)),
            ("fediverse", "misskey", target, "comments_total", "", at, "0"),
            ("fediverse", "misskey", target, "peers_total", "", at, str(self.instances)),
            ("fediverse", "misskey", target, "registrations_open", "", at, "1"),
        }


@dataclass
class LemmySpec:
    users: int = 500
    posts: int = 2000
    comments: int = 9000
    day: int = 20
    week: int = 60
    month: int = 120
    halfyear: int = 300

    def routes(self) -> Routes:
        counts = {
            "users": self.users,
            "posts": self.posts,
            "comments": self.comments,
            "users_active_day": self.day,
            "users_active_week": self.week,
            "users_active_month": self.month,
            "users_active_half_year": self.halfyear,
        }
        return {
            # Old Lemmy advertised /nodeinfo/2.0.json, which 0.19.4+ redirects to 2.1.
            "GET /.well-known/nodeinfo": lambda request: Reply(
                body={
                    "links": [
                        {
                            "rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
                            "href": f"{_base(request)}/nodeinfo/2.0.json",
                        }
                    ]
                }
            ),
            "GET /nodeinfo/2.0.json": Reply(
                301, b"", content_type=None, headers={"Location": "/nodeinfo/2.1"}
            ),
            "GET /nodeinfo/2.1": Reply(
                body=pl.lemmy_nodeinfo(
                    self.users, self.month, self.halfyear, self.posts, self.comments
                )
            ),
            "GET /api/v3/site": Reply(body=pl.lemmy_site(counts)),
        }

    def expected(self, target: str, now: datetime) -> set[Row]:
        at = iso(now)
        values = {
            "users_total": self.users,
            "posts_total": self.posts,
            "comments_total": self.comments,
            "users_active_day": self.day,
            "users_active_week": self.week,
            "users_active_month": self.month,
            "users_active_halfyear": self.halfyear,
            "registrations_open": 1,
        }
        return {("fediverse", "lemmy", target, m, "", at, str(v)) for m, v in values.items()}


def nodeinfo_only_routes(name: str) -> Routes:
    """A server that publishes NodeInfo alone (here the Pleroma-shaped fixture)."""
    document = pl.payload(f"fediverse/nodeinfo/{name}")
    return {
        "GET /.well-known/nodeinfo": wellknown_route("2.0"),
        "GET /nodeinfo/2.0": Reply(body=document),
    }


def slowed(routes: Routes, seconds: float) -> Routes:
    """The same routes, each answer delayed (a server far away, or overloaded)."""
    import dataclasses

    def wrap(handler: Any) -> Any:
        if isinstance(handler, Reply):
            return dataclasses.replace(handler, delay=seconds)
        return lambda request: dataclasses.replace(handler(request), delay=seconds)

    return {route: wrap(handler) for route, handler in routes.items()}
