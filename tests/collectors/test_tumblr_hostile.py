"""A hostile Tumblr API: one run where tags and blogs hang, drip, throttle, lie and loop.

Every target shares one API base URL, so the simulated server picks its misbehaviour
by the tag or blog asked for. The run must end within the deadline, record each
failure with its kind, keep every complete day it saw, and lose nothing of the
healthy tag and blog.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Workspace
from tests.fixtures.tumblr.fake_api import (
    KEY,
    FakeTumblr,
    blog_info,
    day_counts,
    envelope,
    error,
    post,
)
from tests.support.hostile import collect_and_read
from tests.support.loopback import Loopback, Reply, Request
from tests.support.sites import iso

NOW = datetime(2022, 11, 15, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
DEADLINE = 4.0
DAYS = 5


def hourly(days: int) -> list[int]:
    """One post an hour for `days` days before NOW and a day after it."""
    start = int((NOW - timedelta(days=days)).timestamp())
    return list(range(start, int((NOW + timedelta(days=1)).timestamp()), 3600))


def same_page_always(request: Request, count: int) -> Reply:
    """A server that ignores `before`: always the same twenty posts of yesterday."""
    start = int((NOW - timedelta(hours=14)).timestamp())
    return Reply(body=envelope([post(i, 9000 + i, start - 60 * i) for i in range(20)]))


def featured(request: Request, count: int) -> Reply:
    stamps = [int((NOW - timedelta(hours=h)).timestamp()) for h in (20, 40, 60)]
    posts = [post(i, 8000 + i, ts) | {"featured_timestamp": ts + 99} for i, ts in enumerate(stamps)]
    return Reply(body=envelope(posts))


def lying_timestamps(request: Request, count: int) -> Reply:
    if count > 1:
        return Reply(body=envelope([]))
    good = int((NOW - timedelta(hours=20)).timestamp())  # yesterday 16:00
    posts = [post(i, 7000 + i, good - i) for i in range(5)]
    posts[1]["timestamp"] = "-1"
    posts[2]["timestamp"] = 99_000_000_000
    posts[3]["timestamp"] = None
    return Reply(body=envelope(posts))


def flaky_429(request: Request, count: int) -> Reply | None:
    if count == 1:
        return Reply(429, error("429_limit_exceeded", 429).body, headers={"Retry-After": "1"})
    return None  # then the real timeline


TUMBLR_429_HEADERS = {
    "x-ratelimit-perhour-limit": "1000",
    "x-ratelimit-perhour-remaining": "0",
    "x-ratelimit-perhour-reset": "1800",
}

TagBehaviour = Callable[[Request, int], Reply | None]
TAGS: dict[str, TagBehaviour] = {
    "hang": lambda r, n: Reply(hang=True),
    "drip": lambda r, n: Reply(body=envelope([]), drip=0.25),
    "always_503": lambda r, n: Reply(503, b"<html>busy</html>", content_type="text/html"),
    "retry_after_1s": flaky_429,
    "tumblr_429_headers": lambda r, n: Reply(
        429, error("429_limit_exceeded", 429).body, headers=TUMBLR_429_HEADERS
    ),
    "retry_after_1h": lambda r, n: Reply(
        429, error("429_limit_exceeded", 429).body, headers={"Retry-After": "3600"}
    ),
    "html": lambda r, n: Reply(body="<!DOCTYPE html><html>Hi</html>", content_type="text/html"),
    "truncated_json": lambda r, n: Reply(body=b'{"meta": {"status": 200}, "response": [{"ty'),
    "cut_connection": lambda r, n: Reply(body=envelope([post(0, 1, 1668000000)]), truncate_at=40),
    "huge": lambda r, n: Reply(body=b"{}", stream_bytes=50_000_000),
    "redirect_loop": lambda r, n: Reply(
        302, b"", content_type=None, headers={"Location": "/v2/tagged?tag=redirect_loop"}
    ),
    "jsonp_401": lambda r, n: Reply(200, error("401_bad_api_key", 401).body),
    "featured": featured,
    "ignores_before": same_page_always,
    "lying_timestamps": lying_timestamps,
    "dies_mid_walk": lambda r, n: Reply(500, b"oops", content_type="text/plain") if n > 2 else None,
}

BLOGS: dict[str, Any] = {
    "negative": blog_info(-5),
    "absurd": blog_info(99_000_000_000),
    "strings": blog_info("123"),
    "missing": {"meta": {"status": 200, "msg": "OK"}, "response": {"blog": {"name": "missing"}}},
    "html": "<html>maintenance</html>",
}

EXPECTED: dict[str, tuple[str, str | None]] = {
    "tag:hang": ("failed", "timeout"),
    "tag:drip": ("failed", "deadline"),
    "tag:always_503": ("failed", "http_503"),
    "tag:retry_after_1s": ("ok", None),
    "tag:tumblr_429_headers": ("failed", "rate_limited"),
    "tag:retry_after_1h": ("failed", "rate_limited"),
    "tag:html": ("failed", "not_json"),
    "tag:truncated_json": ("failed", "bad_json"),
    "tag:cut_connection": ("failed", "protocol"),
    "tag:huge": ("failed", "too_large"),
    "tag:redirect_loop": ("failed", "redirect_loop"),
    "tag:jsonp_401": ("failed", "auth"),
    "tag:featured": ("failed", "featured_tag"),
    "tag:ignores_before": ("failed", "incomplete"),
    "tag:lying_timestamps": ("ok", None),
    "tag:dies_mid_walk": ("failed", "http_500"),
    "tag:healthy": ("ok", None),
    "blog:negative": ("failed", "bad_value"),
    "blog:absurd": ("failed", "bad_value"),
    "blog:strings": ("ok", None),
    "blog:missing": ("failed", "bad_shape"),
    "blog:html": ("failed", "not_json"),
    "blog:gone": ("failed", "not_found"),
    "blog:staff": ("ok", None),
}


def hostile_api() -> FakeTumblr:
    timeline = hourly(DAYS + 3)
    fake = FakeTumblr(
        tags={"healthy": timeline, "retry_after_1s": timeline, "dies_mid_walk": timeline},
        blogs={"staff": 5112},
    )

    def misbehave(request: Request) -> Reply | None:
        tag = request.param("tag")
        if request.path == "/v2/tagged" and tag in TAGS:
            return TAGS[tag](request, len(fake.tagged_requests(tag)))
        blog = request.path.split("/")[3] if request.path.startswith("/v2/blog/") else None
        if blog in BLOGS:
            body = BLOGS[blog]
            return Reply(body=body, content_type="text/html" if blog == "html" else "text/json")
        return None

    fake.hooks.append(misbehave)
    return fake


@pytest.fixture(scope="module")
def hostile_run(loopback: Loopback, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workspace = Workspace(tmp_path_factory.mktemp("tumblr_hostile"))
    fake = hostile_api()
    site = loopback.add(fake.routes())
    tags = [*TAGS, "healthy"]
    blogs = [*BLOGS, "gone", "staff"]
    workspace.write_config(
        {
            "http": {"timeout": 2, "deadline": DEADLINE, "retries": 2, "max_bytes": 1_000_000},
            "collectors": {"tumblr": {"api": site.url, "tags": tags, "blogs": blogs, "days": DAYS}},
        }
    )
    run = collect_and_read(workspace, TRACKER_NOW=iso(NOW), TUMBLR_API_KEY=KEY)
    rows = [tuple(row.values()) for row in workspace.export()]
    return {
        **run,
        "fake": fake,
        "rows": rows,
    }


def test_run_completes_within_the_deadline(hostile_run: dict[str, Any]) -> None:
    result = hostile_run["result"]
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert hostile_run["elapsed"] < DEADLINE + 6, hostile_run["elapsed"]
    ok = sum(1 for outcome, _ in EXPECTED.values() if outcome == "ok")
    total = len(EXPECTED)
    assert f"tumblr: {total} targets: {ok} ok, {total - ok} failed, 0 skipped" in result.stdout


@pytest.mark.parametrize("target", sorted(EXPECTED))
def test_each_target_is_recorded_with_its_kind(hostile_run: dict[str, Any], target: str) -> None:
    outcome, kind, detail = hostile_run["attempts"][target]
    assert (outcome, kind) == EXPECTED[target], detail
    assert KEY not in (detail or "")


def rows_of(hostile_run: dict[str, Any], target: str) -> dict[str, str]:
    return {row[5]: row[6] for row in hostile_run["rows"] if row[2] == target}


def expected_days(fake: FakeTumblr, tag: str) -> dict[str, str]:
    return {
        f"{day}T00:00:00Z": str(n) for day, n in day_counts(fake.tags[tag], TODAY, DAYS).items()
    }


def test_healthy_targets_lose_nothing(hostile_run: dict[str, Any]) -> None:
    fake = hostile_run["fake"]
    assert rows_of(hostile_run, "tag:healthy") == expected_days(fake, "healthy")
    assert set(expected_days(fake, "healthy").values()) == {"24"}  # one post an hour
    # A 429 with Retry-After: 1 was waited out, then the whole window came in.
    assert rows_of(hostile_run, "tag:retry_after_1s") == expected_days(fake, "retry_after_1s")
    assert rows_of(hostile_run, "blog:staff") == {iso(NOW): "5112"}
    assert rows_of(hostile_run, "blog:strings") == {iso(NOW): "123"}


def test_a_walk_that_dies_keeps_its_complete_days(hostile_run: dict[str, Any]) -> None:
    fake = hostile_run["fake"]
    # Hourly posts: page 1 reaches back to yesterday 04:00, page 2 (overlapping that
    # second) to the day before at 09:00, page 3 fails. Yesterday alone is complete.
    yesterday = f"{TODAY - timedelta(days=1)}T00:00:00Z"
    assert rows_of(hostile_run, "tag:dies_mid_walk") == {yesterday: "24"}
    assert expected_days(fake, "dies_mid_walk")[yesterday] == "24"
    pages = [r.param("before") for r in fake.tagged_requests("dies_mid_walk")]
    assert len(set(pages)) == 3 and len(pages) == 5  # page 3 was tried 1 + 2 times


def test_retries_honour_the_server_and_never_wait_an_hour(hostile_run: dict[str, Any]) -> None:
    log = [row for row in hostile_run["fetch_log"] if row[1] == "tagged"]
    first = {row[0]: row for row in reversed(log)}  # the first page of each tag
    short = first["tag:retry_after_1s"]
    assert short[4] == 2 and short[5] >= 900  # waited about a second, then succeeded
    long = first["tag:retry_after_1h"]
    assert long[3] == "rate_limited" and long[4] == 1 and long[5] < 1000
    tumblr_style = first["tag:tumblr_429_headers"]
    # Tumblr says its hourly quota resets in 1800 s: a wait past the deadline is not
    # waited, so the request fails at once, after exactly one try.
    assert tumblr_style[3] == "rate_limited" and tumblr_style[4] == 1 and tumblr_style[5] < 1000


def test_lies_are_rejected_with_reasons(hostile_run: dict[str, Any]) -> None:
    reasons = {(t, reason) for t, _, _, reason in hostile_run["rejections"]}
    assert ("blog:negative", "negative count") in reasons
    assert ("blog:absurd", "implausibly large (over 10,000,000,000)") in reasons
    lying = sorted(reason for t, reason in reasons if t == "tag:lying_timestamps")
    assert lying == [
        "post 7001 not counted: timestamp negative count",
        "post 7002 not counted: timestamp implausibly large (over 10,000,000,000)",
        "post 7003 not counted: no timestamp",
    ]
    # Two good posts yesterday; the tag then ran out, so the other days are measured zeros.
    yesterday = f"{TODAY - timedelta(days=1)}T00:00:00Z"
    got = rows_of(hostile_run, "tag:lying_timestamps")
    assert got[yesterday] == "2" and len(got) == DAYS
    assert set(got.values()) - {"2"} == {"0"}


def test_a_server_that_ignores_before_is_not_asked_forever(hostile_run: dict[str, Any]) -> None:
    assert len(hostile_run["fake"].tagged_requests("ignores_before")) <= 3
    assert rows_of(hostile_run, "tag:ignores_before") == {}


def test_failed_targets_store_nothing_wrong(hostile_run: dict[str, Any]) -> None:
    failed_without_data = [
        target
        for target, (outcome, kind) in EXPECTED.items()
        if outcome == "failed" and target != "tag:dies_mid_walk"
    ]
    stored_targets = {row[2] for row in hostile_run["rows"]}
    assert stored_targets.isdisjoint(failed_without_data)
