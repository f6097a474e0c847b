"""How fast `tracker collect` polls a large fleet, against the ideal bound and a bare loop.

    .venv/bin/python bench/collect.py [--count 2000] [--concurrency 100] [--delay 0.1]

Starts the simulated fleet (bench/fleet.py, one port per server, every answer
delayed, 10% dead or hostile), runs the real `tracker collect` on it as a
subprocess, then replays exactly the requests the collector made with a bare
asyncio HTTP/1.1 loop at the same concurrency. Prints wall time, requests/s,
the ideal bound (requests x latency / concurrency), peak RSS, and the ratios.
Targets: within 1.5x of the ideal bound, at least 0.5x the bare loop's speed,
peak RSS under 400 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

import yaml

REPO = Path(__file__).resolve().parents[1]
MAX_BYTES = 5_000_000


def start_fleet(
    args: argparse.Namespace, workdir: Path
) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    manifest = workdir / "fleet.json"
    fleet = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "bench" / "fleet.py"),
            "--count",
            str(args.count),
            "--delay",
            str(args.delay),
            "--bad",
            str(args.bad),
            "--manifest",
            str(manifest),
        ],
    )
    deadline = time.monotonic() + 120
    while not manifest.exists():
        if fleet.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the fleet did not start")
        time.sleep(0.1)
    return fleet, json.loads(manifest.read_text())


def run_tracker(workdir: Path, urls: list[str], concurrency: int) -> tuple[float, int, str]:
    config = workdir / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": "sqlite:///tracker.db",
                "contact": "https://example.org/bench",
                "http": {
                    "timeout": 5,
                    "deadline": 30,
                    "concurrency": concurrency,
                    "retries": 0,
                    "allow_hosts": ["127.0.0.1"],  # the fleet's loopback servers
                },
                "collectors": {"fediverse": {"instances": urls}},
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "tracker", "collect", "--config", str(config)],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    output = (process.stdout.read() if process.stdout else b"").decode()
    errors = (process.stderr.read() if process.stderr else b"").decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"tracker collect failed:\n{errors}")
    cpu = usage.ru_utime + usage.ru_stime
    return wall, usage.ru_maxrss * 1024, f"{output.strip()} [cpu {cpu:.1f} s]"


def requests_made(db: Path) -> dict[int, list[tuple[str, str]]]:
    """The requests the collector really sent, per target, in order (from the fetch log)."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT attempt_id, method, url FROM fetches "
            "WHERE error_detail IS NULL OR error_detail NOT LIKE 'not fetched%' "
            "ORDER BY attempt_id, seq"
        ).fetchall()
    plan: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for attempt_id, method, url in rows:
        plan[attempt_id].append((method, url))
    return plan


async def bare_loop(plan: dict[int, list[tuple[str, str]]], concurrency: int) -> int:
    """The same requests over raw asyncio streams: keep-alive per target, no library."""
    targets = iter(plan.values())
    done = 0

    async def one_target(requests: list[tuple[str, str]]) -> None:
        nonlocal done
        parts = urlsplit(requests[0][1])
        try:
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        except OSError:
            done += len(requests)
            return
        try:
            for method, url in requests:
                path = urlsplit(url).path or "/"
                body = b"{}" if method == "POST" else b""
                writer.write(
                    f"{method} {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                done += 1
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                if length > MAX_BYTES:
                    break
                await reader.readexactly(length)
                if b"connection: close" in head.lower():
                    break
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def worker() -> None:
        for requests in targets:
            await one_target(requests)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--delay", type=float, default=0.1)
    parser.add_argument("--bad", type=float, default=0.1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tracker-bench-") as tmp:
        workdir = Path(tmp)
        fleet, manifest = start_fleet(args, workdir)
        try:
            urls = list(manifest)
            wall, rss, summary = run_tracker(workdir, urls, args.concurrency)
            plan = requests_made(workdir / "tracker.db")
            requests = sum(len(r) for r in plan.values())
            dead = {url for url, kind in manifest.items() if kind == "dead"}
            answered = sum(
                len(r)
                for r in plan.values()
                if urlsplit(r[0][1]).netloc not in {urlsplit(u).netloc for u in dead}
            )
            ideal = answered * args.delay / args.concurrency
            started = time.monotonic()
            asyncio.run(bare_loop(plan, args.concurrency))
            bare = time.monotonic() - started
        finally:
            fleet.terminate()
            fleet.wait(timeout=30)
    kinds: dict[str, int] = defaultdict(int)
    for kind in manifest.values():
        kinds[kind] += 1
    print(
        f"fleet: {args.count} servers on 127.0.0.1 ({dict(sorted(kinds.items()))}), "
        f"{args.delay * 1000:.0f} ms per answer, concurrency {args.concurrency}"
    )
    print(f"tracker: {summary}")
    print(f"requests: {requests} ({answered} answered by a server, the rest refused)")
    print(
        f"tracker collect: {wall:.1f} s wall, {requests / wall:.0f} req/s, "
        f"peak RSS {rss / 1e6:.0f} MB"
    )
    print(
        f"ideal bound: {ideal:.1f} s -> tracker at {wall / ideal:.2f}x the ideal (target <= 1.5x)"
    )
    print(
        f"bare asyncio loop: {bare:.1f} s, {requests / bare:.0f} req/s -> tracker at "
        f"{bare / wall:.2f}x its speed (target >= 0.5x)"
    )
    print(f"peak RSS target < 400 MB: {'met' if rss < 400e6 else 'MISSED'}")


if __name__ == "__main__":
    main()
