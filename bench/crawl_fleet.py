"""Serve a simulated fediverse graph (tests/support/graph.py) from several processes.

    .venv/bin/python bench/crawl_fleet.py --count 30000 --workdir /tmp/fleet

Each worker process listens on at most `--per-process` ports (the open-file limit
here is 20,000 a process; each raises RLIMIT_NOFILE to its hard limit), keeps the
dead servers' ports bound but not listening (connections refused, and nobody else
can take them), and answers with a lean asyncio protocol (one event loop, no task
per connection: the fleet shares the 2 cores with the crawler it measures). Every
answer waits the graph's latency; hostile servers hang, drip or fail as defined.

A worker writes `worker-<i>.ready.json` once all its ports listen, then
`worker-<i>.stats.json` every second and on SIGTERM: requests served, connections,
requests per path, connections to servers nobody reachable links to (islands,
shadows), and connections to the deny probes (worker 0 also listens on 127.0.0.2,
::1 and 127.0.0.1 at the ports the junk names).

Run alone it builds a graph on free ports below 32768, prints the seeds and serves
until Ctrl-C; bench/crawl.py uses `Fleet` from here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import pickle
import resource
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.graph import Answer, Graph, Server, free_ports, make_graph
from tests.support.loopback import PROBE_HOSTS, REASONS

PER_PROCESS = 7000
"""Listening sockets per worker: with the connections it accepts, well under 20,000 fds."""

KNOWN_PATHS = frozenset(
    {
        "/robots.txt",
        "/.well-known/nodeinfo",
        "/api/v1/instance/peers",
        "/api/federation/instances",
        "/api/v3/federated_instances",
    }
)


@dataclass
class Stats:
    requests: int = 0
    connections: int = 0
    paths: Counter[str] = field(default_factory=Counter)
    unreachable: Counter[str] = field(default_factory=Counter)
    """Connections accepted by islands and shadows, by name."""
    probes: Counter[str] = field(default_factory=Counter)
    """Connections accepted by the deny probes, by address."""

    def as_json(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "requests": self.requests,
            "connections": self.connections,
            "paths": dict(self.paths),
            "unreachable_contacted": dict(self.unreachable),
            "probe_connections": dict(self.probes),
            "cpu_seconds": sum(os.times()[:2]),
        }


def path_kind(path: str) -> str:
    if path in KNOWN_PATHS:
        return path
    if path.startswith("/nodeinfo/"):
        return "/nodeinfo/*"
    return "other"


class Connection(asyncio.Protocol):
    """HTTP/1.1 keep-alive, one request at a time (pipelined ones wait their turn)."""

    def __init__(self, server: Server, stats: Stats, latency: float) -> None:
        self.server = server
        self.stats = stats
        self.latency = latency
        self.buffer = bytearray()
        self.busy = False
        self.timer: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.stats.connections += 1
        if self.server.role != "main":
            self.stats.unreachable[self.server.name] += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > 1 << 20:
            self._close()
        elif not self.busy:
            self._next()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.transport = None

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _next(self) -> None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        try:
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            length, close = 0, False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection":
                    close = value.strip().lower() == "close"
        except ValueError:
            self._close()
            return
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        path = target.split("?", 1)[0]
        self.stats.requests += 1
        self.stats.paths[path_kind(path)] += 1
        answer = self.server.answer(method, path, body)
        self.busy = True
        if answer.hang:
            return  # never answer; the client gives up and closes
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.latency, self._reply, answer, close)

    def _reply(self, answer: Answer, close: bool) -> None:
        if self.transport is None:
            return
        head = [f"HTTP/1.1 {answer.status} {REASONS.get(answer.status, 'Status')}"]
        if answer.content_type:
            head.append(f"Content-Type: {answer.content_type}")
        head.append(f"Content-Length: {len(answer.body)}")
        head.append("Connection: close" if close else "Connection: keep-alive")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + answer.body
        if answer.drip is None:
            self.transport.write(data)
            self._done(close)
        else:
            self._drip(data, 0, answer.drip, close)

    def _drip(self, data: bytes, offset: int, every: float, close: bool) -> None:
        if self.transport is None:
            return
        self.transport.write(data[offset : offset + 1])
        if offset + 1 >= len(data):
            self._done(close)
            return
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(every, self._drip, data, offset + 1, every, close)

    def _done(self, close: bool) -> None:
        self.busy = False
        self.timer = None
        if close:
            self._close()
        else:
            self._next()


class Probe(asyncio.Protocol):
    """A deny probe: counts the connection, answers nothing useful, closes."""

    def __init__(self, stats: Stats, address: str) -> None:
        self.stats = stats
        self.address = address

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.stats.probes[self.address] += 1
        transport.close()


def raise_open_files() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def bound_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot bind {host} port {port}: {exc}") from exc
    sock.setblocking(False)
    return sock


def write_json(path: Path, document: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document))
    temporary.replace(path)


async def serve_shard(shard: dict[str, Any], ready: Path, stats_path: Path) -> None:
    """Listen on every port of the shard, write the ready file, serve until SIGTERM."""
    limit = raise_open_files()
    loop = asyncio.get_running_loop()
    stats = Stats()
    servers: list[Server] = shard["servers"]
    latency: float = shard["latency"]
    listeners: list[asyncio.Server] = []
    reserved: list[socket.socket] = []
    for server in servers:
        sock = bound_socket("127.0.0.1", server.port)
        if not server.listening:
            reserved.append(sock)  # bound, never listening: connections are refused
            continue
        sock.listen(128)
        listeners.append(
            await loop.create_server(partial(Connection, server, stats, latency), sock=sock)
        )
    for name, port in shard.get("probes", {}).items():
        host = PROBE_HOSTS[name]
        sock = bound_socket(host, port)
        sock.listen(128)
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        listeners.append(await loop.create_server(partial(Probe, stats, address), sock=sock))
    write_json(
        ready,
        {
            "pid": os.getpid(),
            "servers": len(servers),
            "listening": len(listeners),
            "reserved": len(reserved),
            "open_files_limit": limit,
            "ports": [min(s.port for s in servers), max(s.port for s in servers)],
        },
    )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    parent = os.getppid()
    while not stop.is_set():
        if os.getppid() != parent:
            break  # the bench died without stopping us: free the ports
        write_json(stats_path, stats.as_json())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)
    for listener in listeners:
        listener.close()
    for sock in reserved:
        sock.close()
    write_json(stats_path, stats.as_json())


def worker_main(shard_path: Path) -> None:
    with shard_path.open("rb") as handle:
        shard = pickle.load(handle)
    base = shard_path.with_suffix("")
    asyncio.run(
        serve_shard(shard, base.with_suffix(".ready.json"), base.with_suffix(".stats.json"))
    )


@dataclass
class FleetStats:
    requests: int
    connections: int
    paths: Counter[str]
    unreachable_contacted: dict[str, int]
    probe_connections: dict[str, int]
    cpu_seconds: float
    per_process: list[int] = field(default_factory=list)
    """Requests served by each worker."""

    def since(self, before: FleetStats) -> FleetStats:
        """What was served between `before` and these stats."""
        return FleetStats(
            requests=self.requests - before.requests,
            connections=self.connections - before.connections,
            paths=self.paths - before.paths,
            unreachable_contacted=dict(
                Counter(self.unreachable_contacted) - Counter(before.unreachable_contacted)
            ),
            probe_connections=dict(
                Counter(self.probe_connections) - Counter(before.probe_connections)
            ),
            cpu_seconds=self.cpu_seconds - before.cpu_seconds,
            per_process=[
                now - then
                for now, then in itertools.zip_longest(
                    self.per_process, before.per_process[: len(self.per_process)], fillvalue=0
                )
            ],
        )


class Fleet:
    """The graph's servers in `processes` worker processes (a context manager)."""

    def __init__(self, graph: Graph, workdir: Path, per_process: int = PER_PROCESS) -> None:
        self.graph = graph
        self.workdir = workdir
        self.processes = max(1, math.ceil(len(graph.servers) / per_process))
        self.workers: list[subprocess.Popen[bytes]] = []
        self.ready: list[dict[str, Any]] = []
        self.started_in = 0.0

    def shard(self, index: int) -> Path:
        return self.workdir / f"worker-{index}.pickle"

    def start(self, timeout: float = 300) -> None:
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        size = math.ceil(len(self.graph.servers) / self.processes)
        for index in range(self.processes):
            shard = {
                "servers": self.graph.servers[index * size : (index + 1) * size],
                "latency": self.graph.latency,
                "probes": self.graph.deny_ports if index == 0 else {},
            }
            with self.shard(index).open("wb") as handle:
                pickle.dump(shard, handle, protocol=pickle.HIGHEST_PROTOCOL)
            log = (self.workdir / f"worker-{index}.log").open("wb")
            self.workers.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--worker", str(self.shard(index))],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        deadline = time.monotonic() + timeout
        for index, worker in enumerate(self.workers):
            ready = self.shard(index).with_suffix(".ready.json")
            while not ready.exists():
                if worker.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    text = (self.workdir / f"worker-{index}.log").read_text(errors="replace")
                    raise RuntimeError(f"fleet worker {index} did not start:\n{text[-2000:]}")
                time.sleep(0.05)
            self.ready.append(json.loads(ready.read_text()))
        self.started_in = time.monotonic() - started

    def stats(self) -> FleetStats:
        total = FleetStats(0, 0, Counter(), {}, {}, 0.0)
        for index in range(len(self.workers)):
            path = self.shard(index).with_suffix(".stats.json")
            if not path.exists():
                continue
            document = json.loads(path.read_text())
            total.requests += document["requests"]
            total.connections += document["connections"]
            total.paths.update(document["paths"])
            total.unreachable_contacted.update(document["unreachable_contacted"])
            total.probe_connections.update(document["probe_connections"])
            total.cpu_seconds += document["cpu_seconds"]
            total.per_process.append(document["requests"])
        return total

    def fresh_stats(self) -> FleetStats:
        """Stats written after this call (the workers write every second)."""
        time.sleep(1.2)
        return self.stats()

    def stop(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()

    def __enter__(self) -> Fleet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port(host: str, start: int, avoid: set[int]) -> int:
    """A port in [start, 32768) free on `host` (127.0.0.2 and ::1 have their own)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for port in range(start, 32768):
        if port in avoid:
            continue
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port on {host} from {start}")


def bench_graph(count: int, seed: int, seeds: int, latency: float, base: int = 2000) -> Graph:
    """A graph on ports free right now below 32768, deny probes on free ports too."""
    ports = free_ports(count + 1, start=base)
    taken = set(ports)
    deny = {
        "lo": ports[-1],
        "alt": free_port(PROBE_HOSTS["alt"], base, taken),
        "v6": free_port(PROBE_HOSTS["v6"], base, taken),
    }
    return make_graph(
        count, seed, seeds=seeds, ports=ports[:count], deny_ports=deny, latency=latency
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=30000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--delay", type=float, default=0.1, help="seconds before every answer")
    parser.add_argument("--per-process", type=int, default=PER_PROCESS)
    parser.add_argument("--workdir", type=Path, default=Path("crawl-fleet"))
    args = parser.parse_args()
    if args.worker is not None:
        worker_main(args.worker)
        return
    graph = bench_graph(args.count, args.seed, args.seeds, args.delay)
    fleet = Fleet(graph, args.workdir, args.per_process)
    signal.signal(signal.SIGTERM, _interrupt)
    with fleet:
        print(
            f"{len(graph)} servers in {fleet.processes} processes, ready in "
            f"{fleet.started_in:.1f} s; seeds: {' '.join(graph.seed_urls)}",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
        stats = fleet.stats()
    print(f"served {stats.requests} requests on {stats.connections} connections")


if __name__ == "__main__":
    main()
