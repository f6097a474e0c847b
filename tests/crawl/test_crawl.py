"""`tracker crawl` end to end on a small loopback fediverse whose answer is known.

A (Mastodon, the seed) lists B and C, K, a dead server, junk and the deny probes;
B (Misskey) pages its 101 peers; C (Lemmy) links F (410), G (robots: keep out) and
H (a Friendica privacy flag); D lists E (Pleroma, no peer list) and I (dead);
K permanently redirects NodeInfo to L. J is an island nobody names.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.conftest import Workspace, clean_env
from tests.support import payloads as pl
from tests.support.loopback import (
    Loopback,
    Reply,
    Request,
    Routes,
    Site,
    dead_url,
    probe_connections,
    start_probes,
)

NOW = "2022-11-09T12:00:00Z"


def host_of(site: Site | str) -> str:
    url = site if isinstance(site, str) else site.url
    return url.removeprefix("http://")


def nodeinfo(software: str, users: int, posts: int, **metadata: Any) -> dict[str, Any]:
    document = pl.mastodon_nodeinfo(users, users // 3, users // 2, posts)
    document["software"] = {"name": software, "version": "1.0.0"}
    document["metadata"] = metadata
    return document


@dataclass
class Fediverse:
    """Sites whose peer lists name each other by `127.0.0.1:port` (known once bound)."""

    loopback: Loopback
    names: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, routes: Callable[[], Routes]) -> Site:
        site = self.loopback.add(routes())
        self.names[name] = host_of(site)
        return site

    def peer(self, name: str) -> str:
        return self.names[name]


def mastodon(fed: Fediverse, users: int, peers: Callable[[], list[str]]) -> Routes:
    return {
        "GET /robots.txt": Reply(200, "User-agent: *\nDisallow: /media_proxy/\n"),
        "GET /.well-known/nodeinfo": lambda r: Reply(
            body=pl.wellknown(f"http://{r.headers['host']}", "2.0")
        ),
        "GET /nodeinfo/2.0": Reply(body=nodeinfo("mastodon", users, users * 10)),
        "GET /api/v1/instance/peers": lambda r: Reply(body=peers()),
    }


def build(loopback: Loopback) -> tuple[Fediverse, dict[str, Any]]:
    fed = Fediverse(loopback)
    probes = start_probes(loopback)
    lo, alt, v6 = probes["lo"].port, probes["alt"].port, probes["v6"].port
    dead = host_of(dead_url())
    fed.names["I"] = dead

    def misskey_page(request: Request) -> Reply:
        import json

        offset = json.loads(request.body or b"{}").get("offset", 0)
        everything = [fed.peer("D"), fed.peer("E")] + [f"junk{i}" for i in range(99)]
        page = everything[offset : offset + 100]
        return Reply(body=[{"id": str(i), "host": host} for i, host in enumerate(page)])

    def lemmy_linked(_: Request) -> Reply:
        linked = [
            {"id": i, "domain": fed.peer(name), "published": "2023-06-01T00:00:00Z"}
            for i, name in enumerate(["F", "G", "H"])
        ]
        return Reply(body={"federated_instances": {"linked": linked, "allowed": [], "blocked": []}})

    def lemmy_nodeinfo() -> dict[str, Any]:
        return nodeinfo("lemmy", 400, 9000)

    wellknown = {
        "GET /.well-known/nodeinfo": lambda r: Reply(
            body=pl.wellknown(f"http://{r.headers['host']}", "2.0")
        )
    }
    fed.add(
        "B",
        lambda: {
            **wellknown,
            "GET /nodeinfo/2.0": Reply(body=nodeinfo("misskey", 700, 7000)),
            "POST /api/federation/instances": misskey_page,
        },
    )
    fed.add(
        "C",
        lambda: {
            **wellknown,
            "GET /nodeinfo/2.0": Reply(body=lemmy_nodeinfo()),
            "GET /api/v3/federated_instances": lemmy_linked,
        },
    )
    fed.add("D", lambda: mastodon(fed, 300, lambda: [fed.peer("E"), fed.peer("I")]))
    fed.add(
        "E", lambda: {**wellknown, "GET /nodeinfo/2.0": Reply(body=nodeinfo("pleroma", 50, 500))}
    )
    fed.add("F", lambda: {"GET /.well-known/nodeinfo": Reply(410, {"error": "gone"})})
    fed.add(
        "G",
        lambda: {
            **mastodon(fed, 99, lambda: [fed.peer("J")]),
            "GET /robots.txt": Reply(200, "User-agent: *\nDisallow: /\n"),
        },
    )
    fed.add(
        "H",
        lambda: {
            **wellknown,
            "GET /nodeinfo/2.0": Reply(body=nodeinfo("friendica", 20, 200, private=True)),
        },
    )
    fed.add("J", lambda: mastodon(fed, 5000, lambda: []))
    fed.add("L", lambda: mastodon(fed, 250, lambda: [fed.peer("A")]))
    fed.add(
        "K",
        lambda: {
            "GET /.well-known/nodeinfo": Reply(
                301, b"", headers={"Location": f"http://{fed.peer('L')}/.well-known/nodeinfo"}
            )
        },
    )
    junk = [
        f"127.0.0.2:{alt}",
        f"localhost:{lo}",
        f"[::1]:{v6}",
        f"0.0.0.0:{lo}",
        "nodots",
        "-bad-.x",
        "a" * 250 + ".org",
        f"https://{fed.peer('B')}/about",  # a real neighbour, spelt as a URL: kept
        fed.peer("C").upper(),
        fed.peer("C") + ".",
        42,
    ]
    fed.add(
        "A",
        lambda: mastodon(
            fed, 1000, lambda: [fed.peer("B"), fed.peer("C"), fed.peer("D"), fed.peer("K"), *junk]
        ),
    )
    return fed, {"probes": probes}


FOUND = set("ABCDEFGHIKL")
MEASURED = set("ABCDEL")
OPTED_OUT = set("FGH")


def read_servers(workspace: Workspace) -> dict[str, tuple[str, str | None]]:
    with sqlite3.connect(workspace.db) as db:
        return {
            host: (state, moved)
            for host, state, moved in db.execute("SELECT host, state, moved_to FROM servers")
        }


def measured(workspace: Workspace) -> dict[str, str]:
    with sqlite3.connect(workspace.db) as db:
        return dict(
            db.execute(
                "SELECT target, platform FROM observations "
                "WHERE source = 'fediverse' AND metric = 'users_total'"
            ).fetchall()
        )


def config(fed: Fediverse, **discover: Any) -> dict[str, Any]:
    return {
        "collectors": {
            "fediverse": {
                "instances": [],
                "discover": {
                    "seeds": [f"http://{fed.peer('A')}"],
                    "requests_per_second": 50,
                    **discover,
                },
            }
        }
    }


def test_crawl_finds_exactly_the_reachable_servers_and_measures_the_willing(
    workspace: Workspace, loopback: Loopback
) -> None:
    fed, extra = build(loopback)
    workspace.write_config(config(fed))
    result = workspace.run("crawl", TRACKER_NOW=NOW)
    assert result.returncode == 0, result.stderr
    name_of = {host: name for name, host in fed.names.items()}

    servers = read_servers(workspace)
    assert {name_of.get(host, host) for host in servers} == FOUND  # not J, no junk, no probe
    states = {name_of[host]: state for host, (state, _) in servers.items()}
    assert {n for n, s in states.items() if s == "opted_out"} == OPTED_OUT
    assert states["K"] == "moved" and servers[fed.peer("K")][1] == fed.peer("L")
    assert states["I"] == "discovered"  # never answered: failing, backed off, not yet dead
    got = measured(workspace)
    assert {name_of[host] for host in got} == MEASURED
    assert got[fed.peer("B")] == "misskey" and got[fed.peer("C")] == "lemmy"
    assert probe_connections(extra["probes"]) == {}
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("crawl: 11 servers known (10 new)"), line
    assert "junk peer names dropped" in line and "ip_literal" in line

    again = workspace.run("crawl", TRACKER_NOW="2022-11-09T18:00:00Z")
    assert again.returncode == 0, again.stderr
    assert set(read_servers(workspace)) == set(servers)  # nothing new, nothing lost


def test_exclude_is_never_contacted(workspace: Workspace, loopback: Loopback) -> None:
    fed, _ = build(loopback)
    c_site = next(s for s in loopback.sites if host_of(s) == fed.peer("C"))
    before = len(c_site.requests)
    workspace.write_config(config(fed, exclude=["127.0.0.1"]))
    # Every loopback server is under 127.0.0.1: only the seed itself is excluded too,
    # so nothing at all is fetched.
    result = workspace.run("crawl", TRACKER_NOW=NOW)
    assert result.returncode == 0, result.stderr
    assert len(c_site.requests) == before
    assert {state for state, _ in read_servers(workspace).values()} == {"excluded"}


def test_sigkill_mid_crawl_then_resume_loses_nothing_and_refetches_only_in_flight(
    workspace: Workspace, loopback: Loopback
) -> None:
    """A chain of 24 slow servers; kill -9 once some are committed, crawl again."""
    names: list[str] = []
    sites: list[Site] = []
    count = 24
    for index in range(count):
        following = index + 1

        def peers(following: int = following) -> list[str]:
            return names[following : following + 2]

        routes = {
            "GET /.well-known/nodeinfo": lambda r: Reply(
                body=pl.wellknown(f"http://{r.headers['host']}", "2.0"), delay=0.15
            ),
            "GET /nodeinfo/2.0": Reply(body=nodeinfo("mastodon", 10 + index, 100), delay=0.15),
            "GET /api/v1/instance/peers": lambda r, peers=peers: Reply(body=peers(), delay=0.15),
        }
        site = loopback.add(routes)
        sites.append(site)
        names.append(host_of(site))
    workspace.write_config(
        {
            "collectors": {
                "fediverse": {
                    "discover": {
                        "seeds": [f"http://{names[0]}"],
                        "concurrency": 2,
                        "requests_per_second": 50,
                    }
                }
            }
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "tracker", "crawl", "--config", str(workspace.config)],
        cwd=workspace.root,
        env=clean_env(TRACKER_NOW=NOW),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    checked: set[str] = set()
    while time.monotonic() < deadline and len(checked) < 6:
        time.sleep(0.05)
        if workspace.db.exists():
            try:
                with sqlite3.connect(workspace.db) as db:
                    checked = {
                        host
                        for (host,) in db.execute(
                            "SELECT host FROM servers WHERE last_checked IS NOT NULL"
                        )
                    }
            except sqlite3.OperationalError:
                continue
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=10)
    assert 6 <= len(checked) < count, checked
    with sqlite3.connect(workspace.db) as db:
        committed = {
            host
            for (host,) in db.execute("SELECT host FROM servers WHERE last_checked IS NOT NULL")
        }
    asked_before = {host_of(site): len(site.requests) for site in sites}

    result = workspace.run("crawl", TRACKER_NOW=NOW)
    assert result.returncode == 0, result.stderr
    asked_again = {
        host_of(site): len(site.requests) - asked_before[host_of(site)] for site in sites
    }
    assert all(asked_again[host] == 0 for host in committed), asked_again
    refetched = {host for host, n in asked_again.items() if n and asked_before[host]}
    assert len(refetched) <= 2  # at most the two in flight when it was killed
    assert set(measured(workspace)) == set(names)  # the whole chain, nothing lost
    assert "resumed:" in result.stdout


def test_an_unreadable_exclude_file_is_one_config_line(workspace: Workspace) -> None:
    workspace.write_config(
        {
            "collectors": {
                "fediverse": {
                    "discover": {"seeds": ["http://127.0.0.1:9"], "exclude_file": "nope.txt"}
                }
            }
        }
    )
    result = workspace.run("crawl", TRACKER_NOW=NOW)
    assert result.returncode == 2
    assert "collectors.fediverse.discover.exclude_file:" in result.stderr
    assert "nope.txt" in result.stderr and "Traceback" not in result.stderr


def crawled_then_listing_j(
    workspace: Workspace, loopback: Loopback
) -> tuple[Fediverse, dict[str, Any]]:
    """After a crawl, a config listing server J (which the crawl also found)."""
    fed, _ = build(loopback)
    workspace.write_config(config(fed))
    assert workspace.run("crawl", TRACKER_NOW=NOW).returncode == 0
    j_site = next(s for s in loopback.sites if host_of(s) == fed.peer("J"))
    settings = config(fed)
    settings["collectors"]["fediverse"]["instances"] = [j_site.url]
    workspace.write_config(settings)
    return fed, settings


def test_collect_with_discover_measures_the_listed_and_the_known_alive_servers(
    workspace: Workspace, loopback: Loopback
) -> None:
    fed, _ = crawled_then_listing_j(workspace, loopback)
    result = workspace.run("collect", TRACKER_NOW="2022-11-10T18:00:00Z")  # a day on
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(workspace.db) as db:
        targets = {
            target
            for (target,) in db.execute(
                "SELECT a.target FROM attempts a JOIN runs r ON r.id = a.run_id "
                "WHERE r.collector = 'fediverse'"
            )
        }
    name_of = {host: name for name, host in fed.names.items()}
    assert {name_of[t] for t in targets} == MEASURED | {"J"}  # peers are not followed
    assert "fediverse: 7 targets: 7 ok" in result.stdout


def test_collect_reads_crawl_found_servers_once_a_day_and_listed_ones_every_run(
    workspace: Workspace, loopback: Loopback
) -> None:
    fed, settings = crawled_then_listing_j(workspace, loopback)

    def measured(now: str) -> set[str]:
        result = workspace.run("collect", TRACKER_NOW=now)
        assert result.returncode == 0, result.stderr
        with sqlite3.connect(workspace.db) as db:
            run_id = db.execute("SELECT max(id) FROM runs WHERE collector = 'fediverse'")
            (last,) = run_id.fetchone()
            rows = db.execute("SELECT target FROM attempts WHERE run_id = ?", (last,))
            name_of = {host: name for name, host in fed.names.items()}
            return {name_of[target] for (target,) in rows}

    # The crawl (at NOW, 12:00) measured them: collect reads only the listed J ...
    assert measured("2022-11-09T18:00:00Z") == {"J"}
    assert measured("2022-11-10T10:30:00Z") == {"J"}  # 22.5 hours later: still read
    # ... until nothing read them for 23 hours; then they are read, once.
    assert measured("2022-11-10T11:30:00Z") == MEASURED | {"J"}
    assert measured("2022-11-10T12:00:00Z") == {"J"}

    settings["collectors"]["fediverse"]["discover"]["measure_found"] = "every_run"
    workspace.write_config(settings)
    assert measured("2022-11-10T12:30:00Z") == MEASURED | {"J"}
