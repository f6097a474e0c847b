"""The per-target HTTP session: retries, Retry-After, size caps, secrets kept out of logs."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import httpx
import pytest

from tests.support.loopback import Loopback, Reply
from tracker.config import HttpSettings
from tracker.http.redaction import redact_http_logs
from tracker.http.session import HttpContext, TargetSession, _retry_wait

NOW = datetime(2022, 11, 8, 14, 0, tzinfo=UTC)


def context(**settings: float) -> HttpContext:
    return HttpContext(
        settings=HttpSettings(allow_hosts=("127.0.0.1",), **settings),  # type: ignore[arg-type]
        user_agent="tracker/test (+https://example.org)",
        clock=lambda: NOW,
        secrets=("s3cr3t-key",),
    )


def test_retry_wait_reads_every_rate_limit_dialect() -> None:
    assert _retry_wait(httpx.Headers({"Retry-After": "7"}), 1, NOW) == 7
    http_date = "Tue, 08 Nov 2022 14:00:30 GMT"
    assert _retry_wait(httpx.Headers({"Retry-After": http_date}), 1, NOW) == 30
    # Mastodon: ISO 8601 with microseconds; Bluesky: epoch seconds.
    iso = "2022-11-08T14:05:00.000000Z"
    assert _retry_wait(httpx.Headers({"X-RateLimit-Reset": iso}), 1, NOW) == 300
    epoch = str(int(NOW.timestamp()) + 60)
    assert _retry_wait(httpx.Headers({"RateLimit-Reset": epoch}), 1, NOW) == 60
    backoff = _retry_wait(httpx.Headers({"Retry-After": "soon"}), 3, NOW)
    assert 1.6 <= backoff <= 2.4


def test_secret_params_are_sent_but_never_logged(loopback: Loopback) -> None:
    site = loopback.add({"GET /v2/tagged": Reply(401, {"meta": {"status": 401}})})

    async def go() -> list[object]:
        async with TargetSession(context(retries=0), site.url) as session:
            await session.fetch(
                "tagged", "/v2/tagged", params={"tag": "x"}, secret_params={"api_key": "s3cr3t-key"}
            )
            return list(session.records)

    [record] = asyncio.run(go())
    assert site.requests[0].param("api_key") == "s3cr3t-key"
    assert "s3cr3t" not in repr(record)
    assert record.url.endswith("/v2/tagged?tag=x")  # type: ignore[attr-defined]


def test_5xx_is_retried_then_reported(loopback: Loopback) -> None:
    site = loopback.add({"*": Reply(502, b"bad gateway", content_type="text/plain")})

    async def go() -> object:
        async with TargetSession(context(retries=2), site.url) as session:
            return await session.fetch("x", "/x")

    record = asyncio.run(go())
    assert site.count("/x") == 3
    assert (record.error_kind, record.attempts, record.status) == ("http_502", 3, 502)  # type: ignore[attr-defined]


def test_a_key_echoed_in_a_body_is_not_archived(loopback: Loopback) -> None:
    site = loopback.add(
        {
            "GET /v2/tagged": lambda request: Reply(
                401, {"error": f"bad key {request.param('api_key')}"}
            )
        }
    )

    async def go() -> object:
        async with TargetSession(context(retries=0), site.url) as session:
            return await session.fetch(
                "tagged", "/v2/tagged", secret_params={"api_key": "s3cr3t-key"}
            )

    record = asyncio.run(go())
    assert b"s3cr3t" not in record.body  # type: ignore[attr-defined,operator]
    assert b"bad key REDACTED" in record.body  # type: ignore[attr-defined,operator]


def test_tumblr_quota_headers_say_how_long_to_wait() -> None:
    headers = httpx.Headers(
        {
            "x-ratelimit-perhour-remaining": "0",
            "x-ratelimit-perhour-reset": "1800",
            "x-ratelimit-perday-remaining": "4000",
            "x-ratelimit-perday-reset": "50000",
        }
    )
    assert _retry_wait(headers, 1, NOW) == 1800


def test_secrets_never_reach_http_library_logs(caplog: pytest.LogCaptureFixture) -> None:
    redact_http_logs(("s3cr3t-key",))
    with caplog.at_level(logging.DEBUG, logger="httpx"):
        logging.getLogger("httpx").info(
            "HTTP Request: GET %s", "https://x/v2/tagged?api_key=s3cr3t-key"
        )
    assert "s3cr3t" not in caplog.text
    assert "api_key=REDACTED" in caplog.text
