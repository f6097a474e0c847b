"""A fleet of simulated fediverse servers on 127.0.0.1, one port each, for the benchmarks.

    python bench/fleet.py --count 2000 --delay 0.1 --bad 0.1 --manifest fleet.json

Writes the manifest (url -> kind) once every server listens, then serves until
SIGTERM/SIGINT, when it writes the number of requests served into the manifest
file's `.stats.json` sibling. Healthy servers speak Mastodon (6 requests per
collection); the bad ones are dead (connection refused) or hostile (HTML, 503,
a 50 MB body, truncated JSON), all failing fast so that the ideal time stays
requests x latency / concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.loopback import Reply, Routes, Site, _handler, dead_url
from tests.support.sites import MastodonSpec, slowed

HOSTILE: dict[str, Routes] = {
    "html": {"*": Reply(body="<!DOCTYPE html><html>no</html>", content_type="text/html")},
    "503": {"*": Reply(503, b"busy", content_type="text/plain")},
    "huge": {"*": Reply(body=b"[", stream_bytes=50_000_000)},
    "truncated": {"*": Reply(body=b'{"links": [{"rel": "http://nodeinfo.dia')},
}


def build(count: int, bad: float, seed: int, now: datetime) -> list[tuple[str, Routes | None]]:
    rng = random.Random(seed)
    fleet: list[tuple[str, Routes | None]] = []
    for index in range(count):
        roll = rng.random()
        if roll < bad / 2:
            fleet.append(("dead", None))
        elif roll < bad:
            kind = rng.choice(sorted(HOSTILE))
            fleet.append((kind, HOSTILE[kind]))
        else:
            spec = MastodonSpec(users=1000 + index, posts=10 * index)
            fleet.append(("mastodon", spec.routes(now)))
    return fleet


async def serve(args: argparse.Namespace) -> None:
    now = datetime.now(UTC)
    sites: list[Site] = []
    manifest: dict[str, str] = {}
    for kind, routes in build(args.count, args.bad, args.seed, now):
        if routes is None:
            manifest[dead_url()] = kind
            continue
        site = Site(slowed(routes, args.delay))
        site.server = await asyncio.start_server(_handler(site), "127.0.0.1", 0, backlog=256)
        site.port = site.server.sockets[0].getsockname()[1]
        sites.append(site)
        manifest[site.url] = kind
    Path(args.manifest).write_text(json.dumps(manifest))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    stats = {"requests": sum(len(site.requests) for site in sites)}
    Path(args.manifest).with_suffix(".stats.json").write_text(json.dumps(stats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--delay", type=float, default=0.1, help="seconds before every answer")
    parser.add_argument("--bad", type=float, default=0.1, help="share of dead or hostile servers")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--manifest", required=True)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
