"""How fast and how correctly `tracker crawl` covers a simulated fediverse of 30,000 servers.

    .venv/bin/python bench/crawl.py [--count 30000] [--seeds 3] [--delay 0.1]
                                    [--concurrency 500] [--json figures.json]

Builds the graph of tests/support/graph.py on free loopback ports below 32768
(10% dead or hostile, 410s, robots.txt opt-outs, privacy flags, islands, peer lists
of about 20 entries with junk and duplicates), serves it from several processes
(bench/crawl_fleet.py), runs the real `tracker crawl` from the seeds, then reads
the database: the servers found against `Graph.reachable`, the islands and
shadows found (must be none), the servers measured against `Graph.measurable`,
and the deny probes' connections (must be none). Then, in the same run, a bare
asyncio HTTP/1.1 loop makes the requests a correct crawler makes to the reachable
servers (robots.txt, the NodeInfo well-known and document, the peer list pages)
at the same concurrency, per-server pacing and timeouts.

Prints wall time, servers/s, requests/s (the fetch log and the fleet's own count),
the tracker's peak RSS and CPU time, and the bare loop's time. Targets (issue 11):
under 5 minutes on 2 cores, peak RSS under 500 MB. Exits 1 when a check fails.
Without `tracker crawl` (or with --skip-tracker) it runs the fleet and the bare loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.crawl_fleet import PER_PROCESS, Fleet, FleetStats, bench_graph
from tests.support.graph import Graph

REPO = Path(__file__).resolve().parents[1]

MAX_BYTES = 5_000_000
TARGET_WALL = 300.0
TARGET_RSS = 500e6


@dataclass
class TrackerRun:
    wall: float
    rss: int
    cpu: float
    status: int
    output: str
    errors: str


@dataclass
class Coverage:
    found: set[str] = field(default_factory=set)
    states: Counter[str] = field(default_factory=Counter)
    measured: set[str] = field(default_factory=set)
    fetches: int = 0
    not_fetched: int = 0


def tracker_command() -> list[str]:
    script = REPO / ".venv" / "bin" / "tracker"
    return [str(script)] if script.exists() else [sys.executable, "-m", "tracker"]


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["NO_PROXY"] = "*"
    return env


def crawl_available() -> bool:
    done = subprocess.run(
        [*tracker_command(), "crawl", "--help"],
        capture_output=True,
        env=clean_env(),
        check=False,
    )
    return done.returncode == 0


def write_config(workdir: Path, graph: Graph, args: argparse.Namespace) -> Path:
    discover: dict[str, Any] = {
        "seeds": graph.seed_urls,
        "max_servers": 100_000,
        "concurrency": args.concurrency,
    }
    if args.rps is not None:
        discover["requests_per_second"] = args.rps
    config = workdir / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": f"sqlite:///{workdir / 'tracker.db'}",
                "contact": "https://example.org/bench",
                "http": {
                    "allow_hosts": ["127.0.0.1"],  # the fleet; the deny probes are elsewhere
                    "timeout": args.timeout,
                    "deadline": args.deadline,
                    "retries": 0,
                },
                "collectors": {"fediverse": {"instances": [], "discover": discover}},
            },
            sort_keys=False,
        )
    )
    return config


def peak_rss(pid: int) -> int:
    """VmHWM of a running process, in bytes (0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def run_tracker(workdir: Path, config: Path) -> TrackerRun:
    started = time.monotonic()
    with (workdir / "tracker.out").open("wb") as out, (workdir / "tracker.err").open("wb") as err:
        process = subprocess.Popen(
            [*tracker_command(), "crawl", "--config", str(config)],
            cwd=workdir,
            env=clean_env(),
            stdout=out,
            stderr=err,
        )
        highest = 0
        finished = threading.Event()

        def watch() -> None:
            nonlocal highest
            while not finished.wait(0.2):
                highest = max(highest, peak_rss(process.pid))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        finished.set()
        watcher.join()
    wall = time.monotonic() - started
    return TrackerRun(
        wall=wall,
        rss=max(highest, usage.ru_maxrss * 1024),
        cpu=usage.ru_utime + usage.ru_stime,
        status=process.returncode,
        output=(workdir / "tracker.out").read_text(errors="replace"),
        errors=(workdir / "tracker.err").read_text(errors="replace"),
    )


def read_coverage(db: Path) -> Coverage:
    coverage = Coverage()
    if not db.exists():
        return coverage
    with contextlib.closing(sqlite3.connect(db)) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        if "servers" in tables:
            for host, state in connection.execute("SELECT host, state FROM servers"):
                coverage.found.add(host)
                coverage.states[state] += 1
        if "observations" in tables:
            coverage.measured = {
                row[0]
                for row in connection.execute(
                    "SELECT DISTINCT target FROM observations "
                    "WHERE source = 'fediverse' AND metric = 'users_total'"
                )
            }
        if "fetches" in tables:
            coverage.fetches, coverage.not_fetched = connection.execute(
                "SELECT count(*), coalesce(sum(error_detail LIKE 'not fetched%'), 0) FROM fetches"
            ).fetchone()
    return coverage


# --- the bare loop ----------------------------------------------------------------------


@dataclass
class BareResult:
    wall: float = 0.0
    sent: int = 0
    answered: int = 0
    failed_servers: int = 0


async def read_answer(reader: asyncio.StreamReader, timeout: float) -> tuple[int, bool]:
    """Status and keep-alive of one response; each read waits `timeout` at most."""
    data = bytearray()
    while (end := data.find(b"\r\n\r\n")) < 0:
        chunk = await asyncio.wait_for(reader.read(65536), timeout)
        if not chunk:
            raise ConnectionError("closed before the head")
        data += chunk
    head = bytes(data[:end]).decode("latin-1").lower().split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    length = 0
    for line in head[1:]:
        if line.startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    if length > MAX_BYTES:
        raise ConnectionError("too big")
    left = length - (len(data) - end - 4)
    while left > 0:
        chunk = await asyncio.wait_for(reader.read(min(left, 65536)), timeout)
        if not chunk:
            raise ConnectionError("closed mid-body")
        left -= len(chunk)
    return status, "connection: close" not in head


async def bare_server(
    name: str,
    plan: list[tuple[str, str, bytes]],
    timeout: float,
    interval: float,
    result: BareResult,
) -> None:
    """One server's requests on one keep-alive connection, paced like the crawler."""
    host, port = name.rsplit(":", 1)
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    last_start = -interval
    try:
        for method, path, body in plan:
            wait = last_start + interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            last_start = time.monotonic()
            if connection is None:
                connection = await asyncio.wait_for(
                    asyncio.open_connection(host, int(port)), timeout
                )
            reader, writer = connection
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: {name}\r\nUser-Agent: bare-loop\r\n"
                f"Accept: */*\r\nContent-Length: {len(body)}\r\n"
            )
            if body:
                head += "Content-Type: application/json\r\n"
            writer.write(head.encode() + b"\r\n" + body)
            result.sent += 1
            await writer.drain()
            _, keep_alive = await read_answer(reader, timeout)
            result.answered += 1
            if not keep_alive:
                writer.close()
                connection = None
    except (OSError, TimeoutError, ConnectionError, ValueError, IndexError):
        result.failed_servers += 1
    finally:
        if connection is not None:
            connection[1].close()


async def bare_loop(
    graph: Graph, concurrency: int, timeout: float, deadline: float, rps: float | None
) -> BareResult:
    order = graph.crawl_order()
    interval = 1.0 / rps if rps else 0.0
    result = BareResult()
    queue = iter(order)

    async def worker() -> None:
        for name in queue:
            plan = graph[name].expected_requests()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(bare_server(name, plan, timeout, interval, result), deadline)

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.wall = time.monotonic() - started
    return result


# --- report -----------------------------------------------------------------------------


def describe(names: set[str], limit: int = 5) -> str:
    shown = ", ".join(sorted(names)[:limit])
    return f"{len(names)}" + (f" (e.g. {shown})" if names else "")


def fleet_line(served: FleetStats, wall: float) -> str:
    """What the fleet itself counted: requests, per worker, CPU, per path."""
    return (
        f"fleet served {served.requests} requests ({served.requests / wall:.0f}/s; per worker "
        f"{served.per_process}) on {served.connections} connections, fleet cpu "
        f"{served.cpu_seconds:.1f} s; by path {dict(served.paths.most_common())}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=30000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--delay", type=float, default=0.1, help="seconds before every answer")
    parser.add_argument("--concurrency", type=int, default=500, help="servers in flight")
    parser.add_argument("--rps", type=float, default=None, help="requests/s per server")
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--deadline", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1, help="the graph's random seed")
    parser.add_argument("--per-process", type=int, default=PER_PROCESS)
    parser.add_argument("--skip-tracker", action="store_true", help="fleet and bare loop only")
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: temporary)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    # The bare loop paces like the crawler (its default is 4 requests/s per server).
    bare_rps = args.rps if args.rps is not None else 4.0

    started = time.monotonic()
    graph = bench_graph(args.count, args.seed, args.seeds, args.delay)
    built = time.monotonic() - started
    reachable, measurable = graph.reachable(), graph.measurable()
    plan_requests = sum(len(graph[name].expected_requests()) for name in reachable)
    kinds = graph.kinds()
    print(
        f"graph: {len(graph)} servers (built in {built:.1f} s), {len(reachable)} reachable from "
        f"{len(graph.seeds)} seeds, {len(measurable)} measurable, {kinds['island']} islands, "
        f"{kinds['shadow']} shadows; {args.delay * 1000:.0f} ms per answer"
    )
    print(f"kinds: {dict(sorted(kinds.items()))}")
    figures: dict[str, Any] = {
        "servers": len(graph),
        "reachable": len(reachable),
        "measurable": len(measurable),
        "plan_requests": plan_requests,
        "concurrency": args.concurrency,
        "delay": args.delay,
    }
    ok = True
    with contextlib.ExitStack() as stack:
        if args.workdir is not None:
            workdir = args.workdir
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="crawl-bench-")))
        fleet = Fleet(graph, workdir / "fleet", args.per_process)
        stack.enter_context(fleet)
        print(f"fleet: {fleet.processes} processes ready in {fleet.started_in:.1f} s")

        if args.skip_tracker or not crawl_available():
            print(
                "tracker crawl: not run ("
                + (
                    "--skip-tracker)"
                    if args.skip_tracker
                    else "`tracker crawl` is not available yet)"
                )
            )
        else:
            before = fleet.fresh_stats()
            config = write_config(workdir, graph, args)
            run = run_tracker(workdir, config)
            after = fleet.fresh_stats()
            served = after.since(before)
            coverage = read_coverage(workdir / "tracker.db")
            found = coverage.found
            missing, extra = reachable - found, found - reachable
            islands, shadows = found & graph.islands, found & graph.shadows
            unmeasured, overmeasured = (
                measurable - coverage.measured,
                coverage.measured - measurable,
            )
            requests = coverage.fetches - coverage.not_fetched
            print(
                f"tracker crawl: exit {run.status}, {run.wall:.1f} s wall, cpu {run.cpu:.1f} s, "
                f"peak RSS {run.rss / 1e6:.0f} MB"
            )
            if run.status != 0:
                print(run.errors[-3000:])
            print(f"  output: {run.output.strip()[-600:]}")
            print(f"  servers table: {dict(sorted(coverage.states.items()))}")
            print(
                f"  found {len(found)} of {len(reachable)} reachable: missing {describe(missing)}, "
                f"not reachable {describe(extra)}; islands found {len(islands)}, "
                f"shadows found {len(shadows)}"
            )
            print(
                f"  measured {len(coverage.measured)} of {len(measurable)} measurable: "
                f"missing {describe(unmeasured)}, not measurable {describe(overmeasured)}"
            )
            print(
                f"  {len(found) / run.wall:.0f} servers/s; {requests / run.wall:.0f} requests/s "
                f"({requests} in the fetch log, {coverage.not_fetched} not fetched)"
            )
            print(f"  {fleet_line(served, run.wall)}")
            print(
                f"  deny probes contacted: {after.probe_connections or 'none'}; islands/shadows "
                f"contacted: {describe(set(after.unreachable_contacted))}"
            )
            checks = {
                "found == reachable": not missing and not extra,
                "no island or shadow found": not islands and not shadows,
                "measured == measurable": not unmeasured and not overmeasured,
                "no deny probe contacted": not after.probe_connections,
                "nothing unreachable contacted": not after.unreachable_contacted,
                f"wall < {TARGET_WALL:.0f} s": run.wall < TARGET_WALL,
                f"peak RSS < {TARGET_RSS / 1e6:.0f} MB": run.rss < TARGET_RSS,
                "tracker exit 0": run.status == 0,
            }
            for check, passed in checks.items():
                print(f"  {'ok  ' if passed else 'FAIL'} {check}")
            ok = all(checks.values())
            figures["tracker"] = {
                "wall": run.wall,
                "cpu": run.cpu,
                "peak_rss": run.rss,
                "found": len(found),
                "measured": len(coverage.measured),
                "fetches": requests,
                "fleet_requests": served.requests,
                "fleet_cpu": served.cpu_seconds,
                "servers_per_s": len(found) / run.wall,
                "requests_per_s": requests / run.wall,
                "checks": checks,
            }

        before = fleet.fresh_stats()
        cpu_before = time.process_time()
        bare = asyncio.run(
            bare_loop(graph, args.concurrency, args.timeout, args.deadline, bare_rps)
        )
        bare_cpu = time.process_time() - cpu_before
        served = fleet.fresh_stats().since(before)
        print(
            f"bare asyncio loop: {bare.wall:.1f} s for {len(reachable)} servers, cpu "
            f"{bare_cpu:.1f} s, {bare.sent} requests ({bare.answered} answered, "
            f"{bare.failed_servers} servers failed), {bare.sent / bare.wall:.0f} requests/s, "
            f"{len(reachable) / bare.wall:.0f} servers/s, paced {bare_rps:g} requests/s per server"
        )
        print(f"  {fleet_line(served, bare.wall)}")
        figures["bare"] = {
            "wall": bare.wall,
            "cpu": bare_cpu,
            "sent": bare.sent,
            "answered": bare.answered,
            "fleet_requests": served.requests,
            "fleet_cpu": served.cpu_seconds,
            "requests_per_s": bare.sent / bare.wall,
        }
        if "tracker" in figures:
            speed = bare.wall / figures["tracker"]["wall"]
            print(f"tracker crawl at {speed:.2f}x the bare loop's speed")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
