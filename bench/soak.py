"""Soak: many consecutive scheduled collections against a faulty loopback fleet.

    .venv/bin/python bench/soak.py [--runs 200] [--servers 40] [--seed 1]

A fleet of simulated Mastodon servers on 127.0.0.1 runs in a subprocess (the
loopback code keeps every request it sees, which must not count against our
memory). Each server behaves per collection as its kind and a seeded dice say:
steady ones are healthy or slow, flapping ones alternate healthy and 503,
erratic ones roll healthy, slow, 503, hanging or truncated JSON, and dead ones
never listen. A server counts collections by its `/robots.txt` requests (always
answered at once), so the driver knows what each one did in each run.

The collections run in this process, one after another, through the scheduler's
own job code (`tracker.schedule.Service.run_job`: lock, collect, log), with a
clock one minute later each run. Printed: rows written against rows expected
(39 per healthy server and run: must be equal), stored points against expected
(no loss, no duplicate), failures by kind against the faults served, and the
resident memory after each run (must not grow). Exit 1 if any check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.loopback import Reply, Request, Site, _handler, dead_url
from tests.support.sites import MastodonSpec

BASE = datetime(2026, 11, 4, 1, 0, tzinfo=UTC)  # a Wednesday: 200 minutes stay in one week
ROWS_OK = 39  # 6 readings + 11 complete weeks x 3 weekly metrics
INSTANT_ROWS = 6
WEEKLY_ROWS = 33
KINDS = (("steady", 0.55), ("flapping", 0.15), ("erratic", 0.2), ("dead", 0.1))
BEHAVIOURS = ("ok", "slow", "503", "hang", "truncated")
FAILURE_OF = {"503": "http_503", "hang": "timeout", "truncated": "bad_json", "dead": "refused"}


def kinds(servers: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    names, weights = zip(*KINDS, strict=True)
    return [rng.choices(names, weights)[0] for _ in range(servers)]


def behaviour(seed: int, index: int, kind: str, run: int) -> str:
    """What server `index` does in collection `run` (both processes compute the same)."""
    if kind == "dead":
        return "dead"
    if kind == "flapping":
        return "ok" if run % 2 == 0 else "503"
    rng = random.Random(f"{seed}:{index}:{run}")
    if kind == "steady":
        return "slow" if rng.random() < 0.2 else "ok"
    return rng.choice(BEHAVIOURS)


# -- the fleet (subprocess) ------------------------------------------------------------


def faulty_routes(seed: int, index: int, kind: str) -> dict[str, Any]:
    healthy = MastodonSpec(users=1000 + index).routes(BASE)
    seen = {"run": -1}

    def robots(request: Request) -> Reply:
        seen["run"] += 1
        reply = healthy["GET /robots.txt"]
        assert isinstance(reply, Reply)
        return reply

    def other(request: Request) -> Reply:
        what = behaviour(seed, index, kind, seen["run"])
        if what == "503":
            return Reply(503, b"busy", content_type="text/plain")
        if what == "hang":
            return Reply(hang=True)
        handler = healthy.get(f"{request.method} {request.path}")
        if handler is None:
            return Reply(404, {"error": "Record not found"})
        reply = handler(request) if callable(handler) else handler
        if what == "slow":
            return Reply(reply.status, reply.body, reply.content_type, delay=0.3)
        if what == "truncated":
            return Reply(reply.status, reply.payload()[:20], reply.content_type)
        return reply

    return {"GET /robots.txt": robots, "*": other}


async def serve(args: argparse.Namespace) -> None:
    manifest: list[str] = []
    for index, kind in enumerate(kinds(args.servers, args.seed)):
        if kind == "dead":
            manifest.append(dead_url())
            continue
        site = Site(faulty_routes(args.seed, index, kind))
        site.server = await asyncio.start_server(_handler(site), "127.0.0.1", 0, backlog=256)
        site.port = site.server.sockets[0].getsockname()[1]
        manifest.append(site.url)
    partial = Path(args.manifest + ".partial")
    partial.write_text(json.dumps(manifest))
    partial.replace(args.manifest)  # the driver must never read half a manifest
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


# -- the driver ------------------------------------------------------------------------


def resident_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text(encoding="ascii").split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def start_fleet(
    args: argparse.Namespace, workdir: Path
) -> tuple[subprocess.Popen[bytes], list[str]]:
    manifest = workdir / "fleet.json"
    command = [sys.executable, __file__, "--serve", "--manifest", str(manifest)]
    command += ["--servers", str(args.servers), "--seed", str(args.seed)]
    fleet = subprocess.Popen(command)
    deadline = time.monotonic() + 60
    while not manifest.exists():
        if fleet.poll() is not None or time.monotonic() > deadline:
            fleet.kill()
            raise SystemExit("the fleet did not start")
        time.sleep(0.05)
    return fleet, json.loads(manifest.read_text())


def soak(args: argparse.Namespace, workdir: Path, urls: list[str]) -> bool:
    from tracker.loader import parse_config
    from tracker.schedule import Service

    db = workdir / "tracker.db"
    config = parse_config(
        json.dumps(
            {
                "database": f"sqlite:///{db}",
                "contact": "https://example.org/soak",
                "http": {
                    "timeout": 1,
                    "deadline": 8,
                    "retries": 0,
                    "concurrency": 16,
                    "allow_hosts": ["127.0.0.1"],
                },
                "collectors": {"fediverse": {"instances": urls}},
            }
        ),
        workdir / "config.yaml",
    )
    server_kinds = kinds(args.servers, args.seed)
    moment = {"now": BASE}
    service = Service(config, clock=lambda: moment["now"])
    expected_rows = 0
    served: Counter[str] = Counter()
    ok_servers: set[int] = set()
    rss: list[float] = []
    started = time.monotonic()
    for run in range(args.runs):
        moment["now"] = BASE + timedelta(minutes=run)
        for index, kind in enumerate(server_kinds):
            what = behaviour(args.seed, index, kind, run)
            served[what] += 1
            if what in ("ok", "slow"):
                expected_rows += ROWS_OK
                ok_servers.add(index)
        service.run_job("fediverse")
        gc.collect()
        rss.append(resident_mb())
    wall = time.monotonic() - started

    with sqlite3.connect(db) as connection:
        written, failed, done = connection.execute(
            "SELECT SUM(observations_written), SUM(targets_failed), COUNT(*) FROM runs "
            "WHERE status IN ('ok', 'partial', 'failed')"
        ).fetchone()
        kinds_seen = Counter(
            dict(
                connection.execute(
                    "SELECT error_kind, COUNT(*) FROM attempts WHERE outcome = 'failed' "
                    "GROUP BY error_kind"
                ).fetchall()
            )
        )
        instant, weekly = (
            connection.execute(
                "SELECT COUNT(*) FROM observations WHERE period = ?", (period,)
            ).fetchone()[0]
            for period in ("", "week")
        )
        integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
    healthy_runs = served["ok"] + served["slow"]
    planned_failures = Counter(
        {FAILURE_OF[what]: n for what, n in served.items() if what in FAILURE_OF}
    )

    print(
        f"soak: {args.runs} collections of {args.servers} servers "
        f"({dict(Counter(server_kinds))}), {wall:.0f} s, {done} runs recorded"
    )
    print(f"served per target and run: {dict(sorted(served.items()))}")
    print(f"rows written: {written}, expected: {expected_rows}")
    print(
        f"points stored: {instant} readings (expected {INSTANT_ROWS * healthy_runs}), "
        f"{weekly} weekly (expected {WEEKLY_ROWS * len(ok_servers)}); integrity {integrity}"
    )
    print(f"failures by kind: {dict(sorted(kinds_seen.items()))}")
    print(f"faults served:    {dict(sorted(planned_failures.items()))}")
    print("RSS after each run (MB):")
    for row in range(0, len(rss), 20):
        print("  " + " ".join(f"{value:.0f}" for value in rss[row : row + 20]))
    settled = rss[min(20, len(rss) - 1) : min(40, len(rss))]
    last = rss[-20:]
    early, late = sum(settled) / len(settled), sum(last) / len(last)
    growth = late - early
    print(
        f"RSS: {early:.1f} MB on average in runs 21-40, {late:.1f} MB in the last 20 "
        f"({growth:+.1f} MB); peak {max(rss):.1f} MB"
    )
    checks = {
        "rows written = expected": written == expected_rows,
        "readings stored = expected": instant == INSTANT_ROWS * healthy_runs,
        "weekly points = expected": weekly == WEEKLY_ROWS * len(ok_servers),
        "failed targets = faults served": failed == sum(planned_failures.values()),
        "integrity ok": integrity == "ok",
        "every run recorded": done == args.runs,
        "RSS does not grow (< 3 MB)": growth < 3.0,
    }
    for name, passed in checks.items():
        print(f"{'ok  ' if passed else 'FAIL'} {name}")
    return all(checks.values())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--servers", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--manifest", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args))
        return
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("tracker.schedule").setLevel(logging.ERROR)  # failed runs are expected
    with tempfile.TemporaryDirectory(prefix="tracker-soak-") as tmp:
        fleet, urls = start_fleet(args, Path(tmp))
        try:
            passed = soak(args, Path(tmp), urls)
        finally:
            fleet.terminate()
            fleet.wait(timeout=30)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
