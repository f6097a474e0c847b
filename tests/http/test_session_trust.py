"""What a target's session must never do: fetch from another host or an internal address,
or hold a decompressed body much larger than `max_bytes`."""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
from collections.abc import Iterator

import pytest

from tests.support.loopback import (
    Loopback,
    Reply,
    Site,
    probe_connections,
    probe_urls,
    start_probes,
)
from tracker.config import HttpSettings
from tracker.http.session import HttpContext, TargetSession
from tracker.model import Fetched

from .test_session import NOW


def context(**settings: float) -> HttpContext:
    return HttpContext(
        settings=HttpSettings(allow_hosts=("127.0.0.1",), retries=0, **settings),  # type: ignore[arg-type]
        user_agent="tracker/test (+https://example.org)",
        clock=lambda: NOW,
    )


def fetch(base_url: str, path: str, **settings: float) -> Fetched:
    async def go() -> Fetched:
        async with TargetSession(context(**settings), base_url) as session:
            return await session.fetch("x", path)

    return asyncio.run(go())


@pytest.fixture
def probes(loopback: Loopback) -> Iterator[dict[str, Site]]:
    """Servers on loopback addresses that are not allowed: none may see a connection."""
    sites = start_probes(loopback)
    yield sites
    assert probe_connections(sites) == {}, "the collector connected to a forbidden address"


def test_unlisted_loopback_targets_are_never_connected(probes: dict[str, Site]) -> None:
    for url in probe_urls(probes):
        record = fetch(url, "/.well-known/nodeinfo")
        assert record.error_kind == "forbidden_address", (url, record)
        assert record.status is None and record.body is None


def test_a_redirect_to_an_internal_address_is_not_followed(
    loopback: Loopback, probes: dict[str, Site]
) -> None:
    for url in probe_urls(probes):
        site = loopback.add({"*": Reply(302, b"", headers={"Location": url + "/stats"})})
        record = fetch(site.url, "/x")
        assert record.error_kind == "forbidden_address", (url, record)
        assert record.body is None


def test_a_redirect_to_another_host_is_refused_and_logged(loopback: Loopback) -> None:
    other = loopback.add({"*": Reply(200, {"users": 999_999})})
    site = loopback.add({"*": Reply(301, b"", headers={"Location": other.url + "/api"})})
    record = fetch(site.url, "/api")
    assert record.error_kind == "foreign_host"
    assert record.body is None
    assert record.final_url == other.url + "/api"
    assert other.requests == []  # not even asked


def test_a_redirect_within_the_host_is_followed_and_the_final_url_logged(
    loopback: Loopback,
) -> None:
    site = loopback.add(
        {
            "GET /old": Reply(301, b"", headers={"Location": "/new?x=1"}),
            "GET /new": Reply(200, {"ok": True}),
        }
    )
    record = fetch(site.url, "/old")
    assert record.ok and record.body == b'{"ok": true}'
    assert record.url == site.url + "/old"
    assert record.final_url == site.url + "/new?x=1"
    assert fetch(site.url, "/new").final_url is None  # no redirect, nothing extra logged


def test_a_link_to_another_host_is_not_fetched(loopback: Loopback) -> None:
    other = loopback.add({"*": Reply(200, {"users": 1})})
    site = loopback.add({"*": Reply(200, {})})
    record = fetch(site.url, other.url + "/nodeinfo/2.0")
    assert record.error_kind == "foreign_host" and other.requests == []


def test_a_gzip_bomb_never_inflates_past_max_bytes_in_memory(loopback: Loopback) -> None:
    """100 MB of zeros, about 100 KB of gzip: refused holding about max_bytes, not 100 MB.

    Before the fix httpx inflated each network chunk whole (64 KB of this gzip is
    64 MB) before the cap was checked.
    """
    bomb = gzip.compress(b"\0" * 100_000_000, compresslevel=9)
    site = loopback.add(
        {"*": Reply(200, bomb, headers={"Content-Encoding": "gzip"}, content_type="text/plain")}
    )
    tracemalloc.start()
    try:
        record = fetch(site.url, "/bomb", max_bytes=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert record.error_kind == "too_large"
    assert peak < 8_000_000, f"peak {peak:,} bytes while refusing a 1 MB-capped body"


def test_gzip_answers_are_read_whole(loopback: Loopback) -> None:
    body = b'{"users": 5}' * 10_000
    site = loopback.add(
        {"*": Reply(200, gzip.compress(body), headers={"Content-Encoding": "gzip"})}
    )
    record = fetch(site.url, "/x")
    assert record.ok and record.body == body
    assert site.requests[0].headers["accept-encoding"] == "gzip, deflate"


def test_an_encoding_not_asked_for_is_refused(loopback: Loopback) -> None:
    site = loopback.add({"*": Reply(200, b"\x00\x01", headers={"Content-Encoding": "br"})})
    record = fetch(site.url, "/x")
    assert record.error_kind == "bad_encoding" and record.body is None


def test_robots_txt_may_redirect_to_another_host_and_is_obeyed(loopback: Loopback) -> None:
    """RFC 9309 follows robots.txt redirects (http -> https, www.) to any allowed host."""
    rules = loopback.add({"GET /robots.txt": Reply(200, "User-agent: *\nDisallow: /api/\n")})
    site = loopback.add(
        {
            "GET /robots.txt": Reply(301, b"", headers={"Location": rules.url + "/robots.txt"}),
            "*": Reply(200, {"users": 1}),
        }
    )

    async def go() -> Fetched:
        polite = HttpContext(
            settings=context().settings,
            user_agent="tracker/test (+https://example.org)",
            clock=lambda: NOW,
            respect_robots=True,
        )
        async with TargetSession(polite, site.url) as session:
            return await session.fetch("x", "/api/v1/instance")

    record = asyncio.run(go())
    assert record.error_kind == "robots"
    assert [request.path for request in site.requests] == ["/robots.txt"]
