"""HTTP for one target: its own small client, its deadline, its retries, its fetch log.

Why one short-lived client per target: connections here are per server and never
reused across servers, and one `httpx.AsyncClient` with a large pool was measured
to slow down as the pool grows (279 req/s at 100 connections, 30 at 500). A
client of `per_host` connections per target, closed when the target is done,
keeps every pool tiny. The TLS context is built once per run and shared,
because building one per client costs milliseconds of CPU each.

Every exchange becomes a `Fetched` record, success or not, with secrets removed
from its URL, so the fetch log says what failed and why.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urlsplit
from urllib.robotparser import RobotFileParser

import certifi
import httpcore
import httpx

from tracker import __version__
from tracker.clock import Clock
from tracker.config import HttpSettings
from tracker.http.addresses import AddressPolicy, ForbiddenAddress, GuardedBackend
from tracker.http.decoding import ACCEPT_ENCODING, BodyTooLarge, CappedDecoder, UndecodableBody
from tracker.http.redaction import redact_bytes, redact_text
from tracker.model import Fetched

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 520, 521, 522, 523, 524})
NOT_PUBLISHED = frozenset({401, 403, 404, 410})
ROBOTS_MAX_BYTES = 512_000  # RFC 9309 asks crawlers to parse at least 500 KiB
MAX_REDIRECTS = 5


def user_agent(contact: str) -> str:
    return f"tracker/{__version__} (+{contact})"


def make_ssl_context() -> ssl.SSLContext:
    """One verified TLS context for the whole run (httpx would build one per client)."""
    return ssl.create_default_context(cafile=certifi.where())


@dataclass(frozen=True)
class HttpContext:
    """What every target's session shares within one collector run."""

    settings: HttpSettings
    user_agent: str
    clock: Clock
    ssl_context: ssl.SSLContext = field(default_factory=make_ssl_context)
    respect_robots: bool = False
    secrets: tuple[str, ...] = ()
    min_interval: float = 0.0
    """Seconds between two request starts to one server (the crawl's politeness)."""

    def redact(self, text: str) -> str:
        return redact_text(text, self.secrets)

    def redact_bytes(self, body: bytes | None) -> bytes | None:
        """A body as archived: a server that echoes our key back must not get it stored."""
        return None if body is None else redact_bytes(body, self.secrets)


def make_client(context: HttpContext, policy: AddressPolicy) -> httpx.AsyncClient:
    """A client whose every connection passes the address rule (addresses.py).

    Redirects are followed by `TargetSession` itself, one hop at a time, so each
    hop's host can be checked before it is asked. `trust_env=False`: a proxy from
    the environment would connect on our behalf and bypass the rule.
    """
    settings = context.settings
    transport = httpx.AsyncHTTPTransport(verify=context.ssl_context, trust_env=False)
    # httpx takes no network backend, so its pool is replaced by one with ours
    # (same settings as httpx's own; httpx is pinned below 0.29 in pyproject.toml).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=context.ssl_context,
        max_connections=settings.per_host,
        max_keepalive_connections=settings.per_host,
        keepalive_expiry=5.0,
        network_backend=GuardedBackend(policy),
    )
    return httpx.AsyncClient(
        transport=transport,
        trust_env=False,
        headers={
            "User-Agent": context.user_agent,
            "Accept": "application/json",
            "Accept-Encoding": ACCEPT_ENCODING,
        },
        timeout=httpx.Timeout(settings.timeout),
        follow_redirects=False,
    )


@dataclass
class _Attempt:
    status: int | None = None
    body: bytes | None = None
    content_type: str | None = None
    headers: httpx.Headers | None = None
    error_kind: str | None = None
    error_detail: str | None = None
    retryable: bool = False
    final_url: str | None = None
    moved_to: str | None = None


class TargetSession:
    """Fetches for one target under one deadline; use as `async with`."""

    def __init__(self, context: HttpContext, base_url: str) -> None:
        self.context = context
        self.base_url = base_url.rstrip("/")
        self.records: list[Fetched] = []
        self._deadline = time.monotonic() + context.settings.deadline
        self._next_start = 0.0
        self._client: httpx.AsyncClient | None = None
        self._robots: RobotFileParser | None = None
        self._robots_checked = False
        self._robots_unreadable: Fetched | None = None
        self._own_host = _host_port(httpx.URL(self.base_url))
        self._policy = AddressPolicy(context.settings.allow_hosts)

    async def __aenter__(self) -> TargetSession:
        self._client = make_client(self.context, self._policy)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.aclose()

    @property
    def remaining(self) -> float:
        return self._deadline - time.monotonic()

    def url(self, path: str) -> str:
        return path if "://" in path else self.base_url + path

    async def fetch(
        self,
        kind: str,
        path_or_url: str,
        *,
        method: str = "GET",
        params: Mapping[str, str | int] | None = None,
        secret_params: Mapping[str, str] | None = None,
        json_body: Any = None,
        optional: bool = False,
        other_hosts: bool = False,
    ) -> Fetched:
        """One request with retries, logged as one `Fetched` (also returned).

        `optional`: 401/403/404/410 mean "not published here" (kind `not_published`),
        which a collector treats as a missing feature, not as a failure.
        `other_hosts`: follow links and redirects to other hosts too (robots.txt only);
        otherwise an answer from another host is refused as `foreign_host`.
        """
        url = self.url(path_or_url)
        logged_url = _with_query(url, params)
        started = time.monotonic()
        fetched_at = self.context.clock()
        if self.context.respect_robots and not await self._robots_allow(url):
            unreadable = self._robots_unreadable
            if unreadable is not None:
                kind_, detail = (
                    unreadable.error_kind,
                    (f"not fetched: robots.txt could not be read ({unreadable.error_detail})"),
                )
            else:
                kind_, detail = (
                    "robots",
                    (f"robots.txt disallows {urlsplit(url).path} for our User-Agent"),
                )
            return self._log(
                Fetched(
                    kind=kind,
                    url=logged_url,
                    method=method,
                    fetched_at=fetched_at,
                    error_kind=kind_,
                    error_detail=detail,
                )
            )
        query = {**(params or {}), **(secret_params or {})}
        attempt = _Attempt()
        tries = 0
        while True:
            tries += 1
            attempt = await self._attempt(method, url, query, json_body, other_hosts)
            if not attempt.retryable or tries > self.context.settings.retries:
                break
            wait = _retry_wait(attempt.headers, tries, self.context.clock())
            if wait >= self.remaining:
                attempt.error_detail = (
                    f"{attempt.error_detail}; gave up: waiting {wait:.0f} s for a retry "
                    "would pass this target's deadline"
                )
                break
            await asyncio.sleep(wait)
        if optional and attempt.status in NOT_PUBLISHED:
            attempt.error_kind = "not_published"
        return self._log(
            Fetched(
                kind=kind,
                url=logged_url,
                method=method,
                fetched_at=fetched_at,
                status=attempt.status,
                error_kind=attempt.error_kind,
                error_detail=self.context.redact(attempt.error_detail or "") or None,
                body=self.context.redact_bytes(attempt.body),
                content_type=attempt.content_type,
                elapsed_ms=round((time.monotonic() - started) * 1000),
                attempts=tries,
                final_url=self.context.redact(attempt.final_url) if attempt.final_url else None,
                moved_to=attempt.moved_to,
            )
        )

    def _log(self, fetched: Fetched) -> Fetched:
        self.records.append(fetched)
        return fetched

    async def _attempt(
        self,
        method: str,
        url: str,
        query: Mapping[str, str | int],
        json_body: Any,
        other_hosts: bool = False,
    ) -> _Attempt:
        assert self._client is not None, "use TargetSession as an async context manager"
        remaining = self.remaining
        if remaining <= 0:
            return _Attempt(error_kind="deadline", error_detail="the target's deadline had passed")
        limit = self.context.settings.max_bytes
        request = self._client.build_request(
            method, url, params=dict(query) or None, json=json_body
        )
        try:
            async with asyncio.timeout(remaining):
                permanent = True  # every hop so far a 301/308: the server says it moved
                for hop in range(MAX_REDIRECTS + 1):
                    redirected = hop > 0
                    foreign = None if other_hosts else self._foreign(request.url)
                    if foreign is not None:
                        foreign.moved_to = _host_port(request.url) if permanent else None
                        return foreign
                    await self._pace()
                    response = await self._client.send(request, stream=True)
                    permanent = permanent and response.status_code in (301, 308)
                    try:
                        if response.next_request is None:
                            body = await _read_capped(response, limit)
                            break
                    finally:
                        await response.aclose()
                    request = response.next_request
                else:
                    return _Attempt(
                        error_kind="redirect_loop",
                        error_detail=f"more than {MAX_REDIRECTS} redirects",
                    )
        except TimeoutError:
            deadline = self.context.settings.deadline
            return _Attempt(
                error_kind="deadline",
                error_detail=f"no complete answer within the target's {deadline:g} s deadline",
            )
        except BodyTooLarge as exc:
            size = f"{exc.size:,} bytes" if exc.size else "more"
            return _Attempt(
                error_kind="too_large",
                error_detail=f"body of {size} exceeds http.max_bytes ({exc.limit:,})",
            )
        except UndecodableBody as exc:
            return _Attempt(error_kind="bad_encoding", error_detail=str(exc))
        except ForbiddenAddress as exc:
            return _Attempt(error_kind="forbidden_address", error_detail=f"not connected: {exc}")
        except httpx.HTTPError as exc:
            return _classify(exc)
        status = response.status_code
        result = _Attempt(
            status=status,
            body=body,
            content_type=response.headers.get("content-type"),
            headers=response.headers,
            final_url=str(response.url) if redirected else None,
        )
        if not 200 <= status < 300:
            result.error_kind = "rate_limited" if status == 429 else f"http_{status}"
            result.error_detail = f"HTTP {status} {response.reason_phrase}".strip()
            result.retryable = status in RETRY_STATUSES
        return result

    async def _pace(self) -> None:
        """Keep request starts to this server `min_interval` apart."""
        now = time.monotonic()
        if self._next_start > now:
            await asyncio.sleep(self._next_start - now)
        self._next_start = max(now, self._next_start) + self.context.min_interval

    def _foreign(self, url: httpx.URL) -> _Attempt | None:
        """Refuse, before asking, a request or redirect hop that leaves the target's host.

        Another host's answer stored under this target would count that server
        twice (once under its own name), so it is not fetched at all.
        """
        if _host_port(url) == self._own_host:
            return None
        try:  # a hop to an internal address says more than "another host"
            self._policy.check_literal(url.host)
        except ForbiddenAddress as exc:
            return _Attempt(error_kind="forbidden_address", error_detail=f"not connected: {exc}")
        return _Attempt(
            error_kind="foreign_host",
            error_detail=f"not fetched: {_host_port(url)} is not this target's host "
            f"({self._own_host})",
            final_url=str(url),
        )

    async def _robots_allow(self, url: str) -> bool:
        if urlsplit(url).netloc != urlsplit(self.base_url).netloc:
            return True
        if not self._robots_checked:
            self._robots_checked = True
            self._robots = await self._load_robots()
        return self._robots is None or self._robots.can_fetch(self.context.user_agent, url)

    async def _load_robots(self) -> RobotFileParser | None:
        """RFC 9309: a 4xx robots.txt means no rules; an unreachable one means keep out."""
        # RFC 9309 follows redirects, also to another host (http -> https, www.):
        # nothing from robots.txt is stored as a number, and the address rule holds.
        fetched = await self.fetch("robots.txt", "/robots.txt", other_hosts=True)
        parser = RobotFileParser()
        if fetched.status is not None and 400 <= fetched.status < 500:
            return None
        if not fetched.ok:
            # Unreachable (5xx, network): keep out, and say why in every later record.
            self._robots_unreadable = fetched
            parser.disallow_all = True  # type: ignore[attr-defined]
            return parser
        text = (fetched.body or b"")[:ROBOTS_MAX_BYTES].decode("utf-8", errors="replace")
        parser.parse(text.splitlines())
        return parser


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    """The decoded body, refused as soon as it (or its declared raw size) passes `limit`."""
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(int(declared), limit)
    decoder = CappedDecoder(response.headers.get("content-encoding"), limit)
    chunks: list[bytes] = []
    async for raw in response.aiter_raw():
        chunks.append(decoder.feed(raw))
    chunks.append(decoder.flush())
    return b"".join(chunks)


def _host_port(url: httpx.URL) -> str:
    """`host[:port]` as target keys spell it (the port only when not the scheme's default)."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{host}:{url.port}" if url.port is not None else host


def _classify(exc: httpx.HTTPError) -> _Attempt:
    """Map transport errors to the fetch log's error kinds; which ones are worth a retry."""
    detail = str(exc).strip() or type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout):
        return _Attempt(error_kind="connect_timeout", error_detail=detail, retryable=True)
    if isinstance(exc, httpx.ConnectError):
        cause = repr(exc.__cause__ or exc).lower()
        text = (detail + cause).lower()
        if (
            "name or service" in text
            or "name resolution" in text
            or "nodename" in text
            or "getaddrinfo" in text
        ):
            return _Attempt(error_kind="dns", error_detail=detail)
        if "ssl" in text or "certificate" in text:
            return _Attempt(error_kind="tls", error_detail=detail)
        return _Attempt(error_kind="refused", error_detail=detail, retryable=True)
    if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout | httpx.PoolTimeout):
        return _Attempt(error_kind="timeout", error_detail=f"no data for too long ({detail})")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return _Attempt(error_kind="protocol", error_detail=detail, retryable=True)
    if isinstance(exc, httpx.DecodingError):
        return _Attempt(error_kind="bad_encoding", error_detail=detail)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return _Attempt(error_kind="bad_url", error_detail=detail)
    return _Attempt(error_kind="network", error_detail=detail)


def _retry_wait(headers: httpx.Headers | None, tries: int, now: datetime) -> float:
    """Seconds to wait: the server's Retry-After (or rate-limit reset), else backoff.

    Tumblr says which of its quotas ran out (`x-ratelimit-perhour-remaining: 0`) and
    when it resets in seconds; waiting for that beats retries certain to fail.
    """
    backoff = min(30.0, 0.5 * 2.0 ** (tries - 1)) * (0.8 + 0.4 * random.random())
    if headers is None:
        return backoff
    for quota in ("perday", "perhour"):
        reset = headers.get(f"x-ratelimit-{quota}-reset", "")
        if headers.get(f"x-ratelimit-{quota}-remaining") == "0" and reset.isdigit():
            return float(reset)
    for name in ("retry-after", "ratelimit-reset", "x-ratelimit-reset"):
        value = headers.get(name)
        if value:
            seconds = _parse_reset(name, value.strip(), now)
            if seconds is not None:
                return max(0.0, seconds)
    return backoff


def _parse_reset(name: str, value: str, now: datetime) -> float | None:
    if value.isdigit():
        number = float(value)
        # RateLimit-Reset (Bluesky) is an epoch time; Retry-After is a delay.
        return number - now.timestamp() if number > 1_000_000_000 else number
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - now).total_seconds()


def _with_query(url: str, params: Mapping[str, str | int] | None) -> str:
    if not params:
        return url
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
