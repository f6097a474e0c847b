"""Real HTTP servers on 127.0.0.1 for the collector tests and the benchmarks.

Each simulated site listens on its own port (port 0: the kernel picks a free one)
and answers from a route table. Replies can be hostile on purpose: hang, drip a
byte a second, close mid-body, lie about their length, loop redirects. Plain
asyncio streams, so thousands of sites fit in one process, and the same code
serves a pytest fixture (in a thread) and the benchmark fleet (in a subprocess).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

REASONS = {
    200: "OK",
    301: "Moved Permanently",
    302: "Found",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    410: "Gone",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path

    def param(self, name: str) -> str | None:
        from urllib.parse import parse_qs

        values = parse_qs(self.query).get(name)
        return values[0] if values else None


@dataclass
class Reply:
    status: int = 200
    body: Any = b""
    """bytes as is; str encoded as UTF-8; anything else served as JSON."""
    content_type: str | None = "application/json; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds before the status line."""
    drip: float | None = None
    """Seconds between single bytes of the body (a slow-loris server)."""
    hang: bool = False
    """Accept the request and never answer."""
    truncate_at: int | None = None
    """Send only this many body bytes (with the full Content-Length), then close."""
    declared_length: int | None = None
    """Claim this Content-Length, whatever the body."""
    stream_bytes: int = 0
    """Append this many filler bytes without building them in memory (huge bodies)."""
    no_length: bool = False
    """Send no Content-Length: the body ends when the connection closes."""

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")


Handler = Reply | Callable[[Request], Reply]
Routes = dict[str, Handler]
"""Keys are "GET /path" (or "POST /path"); "* /path" matches any method; "*" any request."""


@dataclass
class Site:
    routes: Routes
    requests: list[Request] = field(default_factory=list)
    server: asyncio.Server | None = None
    port: int = 0
    host: str = "127.0.0.1"
    """Where it listens: deny-rule probes listen on other loopback addresses."""
    connections: int = 0
    """Connections accepted, whether or not a request followed."""

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def count(self, path: str) -> int:
        return sum(1 for request in self.requests if request.path == path)

    def resolve(self, request: Request) -> Reply:
        handler = (
            self.routes.get(f"{request.method} {request.path}")
            or self.routes.get(f"* {request.path}")
            or self.routes.get("*")
        )
        if handler is None:
            return Reply(404, {"error": "Record not found"})
        return handler(request) if callable(handler) else handler


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    body = await reader.readexactly(length) if length else b""
    path, _, query = target.partition("?")
    return Request(method, path, query, headers, body)


async def _send(writer: asyncio.StreamWriter, reply: Reply, keep_alive: bool) -> bool:
    """Write one reply; False when the connection must close afterwards."""
    if reply.delay:
        await asyncio.sleep(reply.delay)
    if reply.hang:
        await asyncio.sleep(3600)
        return False
    body = reply.payload()
    length = reply.declared_length
    if length is None:
        length = len(body) + reply.stream_bytes
    head = [f"HTTP/1.1 {reply.status} {REASONS.get(reply.status, 'Status')}"]
    if reply.content_type:
        head.append(f"Content-Type: {reply.content_type}")
    if not reply.no_length:
        head.append(f"Content-Length: {length}")
    head.extend(f"{name}: {value}" for name, value in reply.headers.items())
    closing = (
        not keep_alive
        or reply.no_length
        or reply.truncate_at is not None
        or reply.declared_length is not None
    )
    head.append("Connection: close" if closing else "Connection: keep-alive")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
    if reply.truncate_at is not None:
        body = body[: reply.truncate_at]
    if reply.drip is not None:
        for index in range(len(body)):
            writer.write(body[index : index + 1])
            await writer.drain()
            await asyncio.sleep(reply.drip)
    else:
        writer.write(body)
    filler = b" " * 65536
    left = reply.stream_bytes
    while left > 0:
        chunk = filler[: min(left, len(filler))]
        writer.write(chunk)
        left -= len(chunk)
        await writer.drain()
    await writer.drain()
    return not closing


def _handler(site: Site) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        site.connections += 1
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                site.requests.append(request)
                keep_alive = request.headers.get("connection", "").lower() != "close"
                if not await _send(writer, site.resolve(request), keep_alive):
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    return handle


class Loopback:
    """An event loop in a background thread hosting any number of sites."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sites: list[Site] = []

    def add(self, routes: Routes, host: str = "127.0.0.1") -> Site:
        site = Site(routes, host=host)
        future = asyncio.run_coroutine_threadsafe(self._start(site), self.loop)
        future.result(timeout=10)
        self.sites.append(site)
        return site

    async def _start(self, site: Site) -> None:
        site.server = await asyncio.start_server(_handler(site), site.host, 0, backlog=512)
        site.port = site.server.sockets[0].getsockname()[1]

    def close(self) -> None:
        async def stop() -> None:
            for site in self.sites:
                if site.server is not None:
                    site.server.close()
            current = asyncio.current_task()
            pending = [task for task in asyncio.all_tasks() if task is not current]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


_RESERVED: list[socket.socket] = []


def dead_url() -> str:
    """A loopback URL where nothing listens: connections are refused at once.

    The port stays bound (never listening) for the life of the process, so the OS
    cannot hand it out again: to a server started later, or as a second dead URL.
    """
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    _RESERVED.append(probe)
    return f"http://127.0.0.1:{probe.getsockname()[1]}"


DENY_SPELLINGS = (
    "http://127.0.0.2:{alt}",
    "http://localhost:{lo}",
    "http://[::1]:{v6}",
    "http://0.0.0.0:{lo}",
    "http://[::ffff:127.0.0.1]:{lo}",
    "http://[64:ff9b::7f00:1]:{lo}",
)
"""Loopback targets the address rule must refuse while `allow_hosts` lists only
127.0.0.1: each names a probe server below, so a connection that got through
would be counted. (Never a private-range or public address: those are not ours.)"""


def start_probes(loopback: Loopback) -> dict[str, Site]:
    """Probe servers on 127.0.0.2, ::1 and 127.0.0.1 that answer anything with a number."""
    trap = Reply(200, {"users": 424242, "usage": {"users": {"total": 424242}}})
    return {name: loopback.add({"*": trap}, host=host) for name, host in PROBE_HOSTS.items()}


PROBE_HOSTS = {"alt": "127.0.0.2", "v6": "::1", "lo": "127.0.0.1"}


def probe_urls(probes: dict[str, Site]) -> list[str]:
    ports = {name: site.port for name, site in probes.items()}
    return [spelling.format(**ports) for spelling in DENY_SPELLINGS]


def probe_connections(probes: dict[str, Site]) -> dict[str, int]:
    return {site.url: site.connections for site in probes.values() if site.connections}
