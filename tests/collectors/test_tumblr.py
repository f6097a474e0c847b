"""`tracker collect` against a simulated Tumblr API on 127.0.0.1, checked through `export`."""

from __future__ import annotations

import random
import sqlite3
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Workspace
from tests.fixtures.tumblr.fake_api import KEY, FakeTumblr, day_counts, midnight
from tests.support.loopback import Loopback, Reply, Request
from tests.support.sites import iso

NOW = datetime(2022, 11, 15, 12, 0, tzinfo=UTC)
TODAY = NOW.date()


def timeline(seed: int, start: datetime, end: datetime, mean_gap: float) -> list[int]:
    """Post times with random gaps (seconds), from `start` to `end`."""
    rng = random.Random(seed)
    stamps, moment = [], start.timestamp()
    while moment < end.timestamp():
        stamps.append(int(moment))
        moment += rng.expovariate(1 / mean_gap)
    return stamps


def with_bursts(stamps: list[int], every: int, size: int) -> list[int]:
    """Every `every`-th post becomes `size` posts in one second (they straddle page ends)."""
    out = []
    for index, ts in enumerate(stamps):
        out.extend([ts] * (size if index % every == 0 else 1))
    return out


def fake_api() -> FakeTumblr:
    end = NOW + timedelta(days=2)  # posts after the run's start exist, too
    return FakeTumblr(
        tags={
            "twitter": timeline(1, datetime(2022, 10, 1, tzinfo=UTC), end, 5400),
            # Posting started 9 days ago: the tag runs out, older days are measured zeros.
            "mastodon": timeline(2, NOW - timedelta(days=9, hours=5), end, 30000),
            "twitter migration": with_bursts(
                timeline(3, datetime(2022, 10, 10, tzinfo=UTC), end, 9000), every=7, size=5
            ),
        },
        blogs={"staff": 5112, "example.tumblr.com": 42},
    )


def config(site_url: str, **extra: Any) -> dict[str, Any]:
    section = {
        "api": site_url,
        "tags": ["twitter", "mastodon", "twitter migration"],
        "blogs": ["staff", "Example.tumblr.com"],
        **extra,
    }
    return {"collectors": {"tumblr": section}}


def exported(workspace: Workspace) -> set[tuple[str, ...]]:
    rows = [tuple(row.values()) for row in workspace.export()]
    assert len(rows) == len(set(rows)), "duplicate rows in the export"
    return set(rows)


def expected_tag_rows(fake: FakeTumblr, tag: str, today: Any, days: int) -> set[tuple[str, ...]]:
    counts = day_counts(fake.tags[tag], today, days)
    return {
        ("tumblr", "tumblr", f"tag:{tag}", "tagged_posts", "day", f"{day}T00:00:00Z", str(n))
        for day, n in counts.items()
    }


def blog_row(target: str, value: int, when: datetime) -> tuple[str, ...]:
    return ("tumblr", "tumblr", target, "posts_total", "", iso(when), str(value))


@pytest.fixture
def api(loopback: Loopback) -> tuple[FakeTumblr, str]:
    fake = fake_api()
    site = loopback.add(fake.routes())
    return fake, site.url


def test_collect_and_export_match_what_the_api_published(
    workspace: Workspace, api: tuple[FakeTumblr, str]
) -> None:
    fake, url = api
    workspace.write_config(config(url))
    result = workspace.cli("collect", TRACKER_NOW=iso(NOW), TUMBLR_API_KEY=KEY)
    assert result.returncode == 0, result.stderr
    assert "tumblr: 5 targets: 5 ok, 0 failed, 0 skipped" in result.stdout

    expected = {blog_row("blog:staff", 5112, NOW), blog_row("blog:example.tumblr.com", 42, NOW)}
    for tag in fake.tags:
        expected |= expected_tag_rows(fake, tag, TODAY, 30)
    got = exported(workspace)
    assert got == expected
    # The data is not trivial: real counts, zeros after the tag ran out, bursts of one second.
    mastodon = day_counts(fake.tags["mastodon"], TODAY, 30)
    assert list(mastodon.values())[:20] == [0] * 20 and sum(mastodon.values()) > 10
    assert sum(day_counts(fake.tags["twitter migration"], TODAY, 30).values()) > 200

    tagged = fake.tagged_requests()
    assert {r.param("tag") for r in tagged} == set(fake.tags)  # spaces arrive as spaces
    for tag in fake.tags:
        first = fake.tagged_requests(tag)[0]
        assert first.param("before") == str(int(midnight(TODAY).timestamp()))
        assert first.param("limit") == "20"
    assert all(r.param("api_key") == KEY for r in fake.requests)
    assert {r.path for r in fake.requests if "blog" in r.path} == {
        "/v2/blog/staff/info",
        "/v2/blog/Example.tumblr.com/info",
    }
    agents = {r.headers.get("user-agent") for r in fake.requests}
    assert len(agents) == 1 and agents.pop().startswith("tracker/")
    # The walk stops once it passes the window: nothing older than 30 days was asked for.
    window_start = int(midnight(TODAY - timedelta(days=30)).timestamp())
    for tag in fake.tags:
        befores = [int(r.param("before") or 0) for r in fake.tagged_requests(tag)]
        assert sorted(befores, reverse=True) == befores
        assert sum(1 for b in befores if b <= window_start) <= 1


def test_later_runs_fetch_only_the_missing_days(
    workspace: Workspace, api: tuple[FakeTumblr, str]
) -> None:
    fake, url = api
    workspace.write_config(config(url, blogs=[]))
    assert workspace.cli("collect", TRACKER_NOW=iso(NOW), TUMBLR_API_KEY=KEY).returncode == 0
    first = exported(workspace)

    # Later the same day: nothing is due, nothing is asked.
    fake.requests.clear()
    result = workspace.cli("collect", TRACKER_NOW=iso(NOW + timedelta(hours=6)), TUMBLR_API_KEY=KEY)
    assert result.returncode == 0, result.stderr
    assert "3 targets: 0 ok, 0 failed, 3 skipped" in result.stdout
    assert fake.requests == []
    assert exported(workspace) == first

    # Next day: only the day that has just completed is walked and added.
    tomorrow = NOW + timedelta(days=1)
    assert workspace.cli("collect", TRACKER_NOW=iso(tomorrow), TUMBLR_API_KEY=KEY).returncode == 0
    added = exported(workspace) - first
    expected: set[tuple[str, ...]] = set()
    for tag in fake.tags:
        expected |= expected_tag_rows(fake, tag, tomorrow.date(), 1)
    assert added == expected
    for tag in fake.tags:
        requests = fake.tagged_requests(tag)
        assert requests[0].param("before") == str(int(midnight(tomorrow.date()).timestamp()))
        posts_that_day = day_counts(fake.tags[tag], tomorrow.date(), 1)[TODAY.isoformat()]
        assert len(requests) <= posts_that_day // 19 + 3, (tag, len(requests))


def test_a_walk_cut_short_is_taken_whole_again_next_run(
    workspace: Workspace, api: tuple[FakeTumblr, str]
) -> None:
    fake, url = api
    tag = "twitter"
    broken = {"on": True}

    def fail_third_page(request: Request) -> Reply | None:
        if broken["on"] and request.path == "/v2/tagged" and len(fake.tagged_requests(tag)) >= 3:
            return Reply(503, b"<html>busy</html>", content_type="text/html")
        return None

    fake.hooks.append(fail_third_page)
    workspace.write_config(config(url, tags=[tag], blogs=[]))
    result = workspace.cli("collect", TRACKER_NOW=iso(NOW), TUMBLR_API_KEY=KEY)
    assert result.returncode == 0, result.stderr
    assert "1 targets: 0 ok, 1 failed" in result.stdout
    partial = exported(workspace)
    full = expected_tag_rows(fake, tag, TODAY, 30)
    assert partial and partial < full  # the complete days of pages 1-2 were kept, exactly

    broken["on"] = False
    later = NOW + timedelta(hours=1)
    assert workspace.cli("collect", TRACKER_NOW=iso(later), TUMBLR_API_KEY=KEY).returncode == 0
    assert exported(workspace) == full


def test_without_a_key_the_collector_is_skipped_with_how_to_get_one(
    workspace: Workspace, api: tuple[FakeTumblr, str]
) -> None:
    fake, url = api
    workspace.write_config(config(url))
    result = workspace.run("collect", TRACKER_NOW=iso(NOW), TUMBLR_API_KEY="")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("tumblr")]
    assert lines == [
        "tumblr: skipped, TUMBLR_API_KEY not set: register an app at "
        "https://www.tumblr.com/oauth/apps and export its OAuth consumer key as TUMBLR_API_KEY"
    ]
    assert fake.requests == []


def test_a_refused_key_is_an_auth_failure_and_the_run_goes_on(
    workspace: Workspace, api: tuple[FakeTumblr, str]
) -> None:
    fake, url = api
    wrong = "wrong-key-0000000000000000000000000000"
    workspace.write_config(config(url))
    result = workspace.cli("collect", TRACKER_NOW=iso(NOW), TUMBLR_API_KEY=wrong)
    assert result.returncode == 0, result.stderr
    assert "5 targets: 0 ok, 5 failed" in result.stdout
    with sqlite3.connect(workspace.db) as db:
        rows = db.execute("SELECT target, error_kind, error_detail FROM attempts").fetchall()
    assert {kind for _, kind, _ in rows} == {"auth"}
    assert all(wrong not in detail and "TUMBLR_API_KEY" in detail for _, _, detail in rows)
    assert len(fake.tagged_requests()) == 3  # one refused call per tag, no retries


def test_an_unknown_blog_is_not_found(workspace: Workspace, api: tuple[FakeTumblr, str]) -> None:
    _, url = api
    workspace.write_config(config(url, tags=[], blogs=["staff", "no-such-blog"]))
    assert workspace.cli("collect", TRACKER_NOW=iso(NOW), TUMBLR_API_KEY=KEY).returncode == 0
    with sqlite3.connect(workspace.db) as db:
        outcomes = dict(db.execute("SELECT target, error_kind FROM attempts").fetchall())
    assert outcomes == {"blog:staff": None, "blog:no-such-blog": "not_found"}
    assert exported(workspace) == {blog_row("blog:staff", 5112, NOW)}


def echoing_api() -> FakeTumblr:
    """A server that sends the key back: in error bodies, in a body, in a redirect Location."""
    fake = FakeTumblr(
        tags={"twitter": timeline(4, NOW - timedelta(days=3), NOW, 20000)}, blogs={"staff": 7}
    )

    def echo(request: Request) -> Reply | None:
        key = request.param("api_key") or ""
        if request.param("tag") == "echo":
            body = {
                "meta": {"status": 400, "msg": f"Bad Request for api_key={key}"},
                "errors": [{"title": "Bad Request", "code": 0, "detail": f"key {key} is odd"}],
                "response": [],
            }
            return Reply(400, body, headers={"X-Echo": key})
        if request.path == "/v2/blog/redirected/info":
            return Reply(
                302, b"", content_type=None, headers={"Location": f"/v2/blog/staff/info?k={key}"}
            )
        if request.path == "/v2/blog/staff/info" and request.param("k"):
            body = {
                "meta": {"status": 200, "msg": "OK"},
                "response": {"blog": {"name": "staff", "posts": 8, "description": key}},
            }
            return Reply(body=body)
        return None

    fake.hooks.append(echo)
    return fake


def stored_text(db_path: Path) -> bytes:
    """The database files' bytes plus every archived body, decompressed."""
    blobs = [
        path.read_bytes()
        for path in db_path.parent.glob(db_path.name + "*")
        if path.is_file()  # tracker.db, -wal, -shm
    ]
    with sqlite3.connect(db_path) as db:
        blobs += [zlib.decompress(body) for (body,) in db.execute("SELECT body FROM payloads")]
        blobs += [str(row).encode() for row in db.execute("SELECT * FROM fetches")]
        blobs += [str(row).encode() for row in db.execute("SELECT * FROM attempts")]
        blobs += [str(row).encode() for row in db.execute("SELECT * FROM rejections")]
        blobs += [str(row).encode() for row in db.execute("SELECT * FROM runs")]
    return b"\n".join(blobs)


def test_the_key_is_never_stored_printed_or_logged(
    workspace: Workspace, loopback: Loopback
) -> None:
    fake = echoing_api()
    site = loopback.add(fake.routes())
    workspace.write_config(
        config(site.url, tags=["twitter", "echo"], blogs=["staff", "redirected", "gone"])
    )
    result = workspace.run("collect", "-vv", TRACKER_NOW=iso(NOW), TUMBLR_API_KEY=KEY)
    assert result.returncode == 0, result.stderr
    assert "HTTP Request: GET" in result.stderr  # -vv really logged every request
    assert KEY not in result.stdout and KEY not in result.stderr
    assert all(r.param("api_key") == KEY for r in fake.requests if r.param("api_key"))

    status = workspace.cli("status")
    export = workspace.cli("export")
    assert status.returncode == 0 and export.returncode == 0
    for output in (status.stdout, status.stderr, export.stdout, export.stderr):
        assert KEY not in output
    assert "blog:redirected" in export.stdout  # the echoed body was still read (8 posts)

    stored = stored_text(workspace.db)
    assert b"REDACTED" in stored, "the echoed key should have been replaced in the archive"
    assert KEY.encode() not in stored, "the API key reached the database"


def test_reparse_rebuilds_the_same_rows(workspace: Workspace, api: tuple[FakeTumblr, str]) -> None:
    _, url = api
    workspace.write_config(config(url))
    assert workspace.cli("collect", TRACKER_NOW=iso(NOW), TUMBLR_API_KEY=KEY).returncode == 0
    before = exported(workspace)
    with sqlite3.connect(workspace.db) as db:
        db.execute("DELETE FROM points")
    assert workspace.export() == []
    result = workspace.cli("reparse", "--source", "tumblr", TUMBLR_API_KEY="")
    assert result.returncode == 0, result.stderr
    assert "reparsed 5 attempts" in result.stdout
    assert exported(workspace) == before


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"blogs": ["staff/../x"]}, "collectors.tumblr.blogs: item 0:"),
        ({"tags": ["ok", "  "]}, "collectors.tumblr.tags: item 1: a tag is 1 to 140 characters"),
        ({"api": "http://api.tumblr.com"}, "collectors.tumblr.api: must be https://"),
        ({"days": 0}, "collectors.tumblr.days:"),
        ({"max_pages": 0}, "collectors.tumblr.max_pages:"),
        ({"tag": ["x"]}, "collectors.tumblr.tag: unknown key"),
    ],
)
def test_config_mistakes_are_one_line_naming_the_key(
    workspace: Workspace, section: dict[str, Any], message: str
) -> None:
    workspace.write_config({"collectors": {"tumblr": section}})
    result = workspace.cli("collect", TUMBLR_API_KEY=KEY)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert message in line, line


def test_the_collector_scrubs_echoed_keys_even_if_the_session_did_not(
    workspace: Workspace, loopback: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracker.http.session import HttpContext

    monkeypatch.setattr(HttpContext, "redact_bytes", lambda self, body: body)
    fake = echoing_api()
    site = loopback.add(fake.routes())
    workspace.write_config(config(site.url, tags=["echo"], blogs=["redirected"]))
    assert workspace.cli("collect", TRACKER_NOW=iso(NOW), TUMBLR_API_KEY=KEY).returncode == 0
    stored = stored_text(workspace.db)
    assert b"REDACTED" in stored
    assert KEY.encode() not in stored, "the API key reached the database"


# The fetch loop alone, without HTTP: what paging can and cannot see.


class StubSession:
    """Answers `TargetSession.fetch` from a FakeTumblr, logging records the same way."""

    def __init__(self, fake: FakeTumblr, now: datetime) -> None:
        from types import SimpleNamespace

        self.fake = fake
        self.now = now
        self.records: list[Any] = []
        self.context = SimpleNamespace(clock=lambda: now)

    async def fetch(self, kind: str, path: str, **options: Any) -> Any:
        from urllib.parse import urlencode

        from tracker.model import Fetched

        params = options.get("params") or {}
        secret = options.get("secret_params") or {}
        reply = self.fake(Request("GET", path, urlencode({**params, **secret}), {}, b""))
        url = f"http://127.0.0.1{path}" + (f"?{urlencode(params)}" if params else "")
        record = Fetched(
            kind=kind,
            url=url,
            fetched_at=self.now,
            status=reply.status,
            body=reply.payload(),
            error_kind=None if reply.status == 200 else f"http_{reply.status}",
        )
        self.records.append(record)
        return record


def walk(fake: FakeTumblr, tag: str, monkeypatch: pytest.MonkeyPatch, **settings: Any) -> Any:
    import asyncio

    from tracker.collectors.tumblr import TumblrCollector, TumblrSettings
    from tracker.config import HttpSettings
    from tracker.storage.history import History
    from tracker.targets import Target

    monkeypatch.setenv("TUMBLR_API_KEY", KEY)
    collector = TumblrCollector(TumblrSettings(tags=[tag], **settings), HttpSettings())
    session = StubSession(fake, NOW)
    target = Target(f"tag:{tag}", "http://127.0.0.1")
    asyncio.run(collector.fetch(target, session, History(None)))  # type: ignore[arg-type]
    return collector.parse(target.key, session.records, NOW), session.records


def test_a_burst_of_more_than_twenty_posts_in_one_second_is_undercounted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A documented limit: `before` is whole seconds and a page holds 20 posts, so of more
    than 20 posts sharing one second only 20 can ever be listed."""
    second = int(midnight(TODAY - timedelta(days=1)).timestamp()) + 3600
    fake = FakeTumblr(tags={"burst": [second] * 25 + [second - 7200]})
    parsed, records = walk(fake, "burst", monkeypatch, days=2)
    yesterday = TODAY - timedelta(days=1)
    values = {o.observed_at.date(): o.value for o in parsed.observations}
    assert values == {yesterday - timedelta(days=1): 1, yesterday: 20}
    assert len(records) <= 5


def test_a_huge_tag_stops_at_the_page_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    start = midnight(TODAY - timedelta(days=2))
    fake = FakeTumblr(tags={"huge": timeline(5, start, NOW, 20)})  # ~4,000 posts a day
    parsed, records = walk(fake, "huge", monkeypatch, max_pages=7)
    assert len(records) == 7
    assert parsed.failure.kind == "page_cap" and parsed.observations == []
    assert "raise collectors.tumblr.max_pages" in parsed.failure.detail


class StoredHistory:
    def __init__(self, latest: datetime | None, outcome: str | None) -> None:
        self.latest, self.outcome = latest, outcome

    def latest_observed(self, source: str, target: str, metric: str, period: str) -> Any:
        assert (source, metric, period) == ("tumblr", "tagged_posts", "day")
        return self.latest

    def last_attempt(self, source: str, target: str) -> Any:
        from tracker.storage.history import LastAttempt

        return None if self.outcome is None else LastAttempt(self.outcome, None, NOW)


@pytest.mark.parametrize(
    ("latest_days_ago", "outcome", "first_days_ago"),
    [
        (None, None, 30),  # nothing stored: backfill the window
        (3, "ok", 2),  # only the days after the newest stored one
        (1, "ok", 0),  # yesterday stored: nothing due today
        (40, "ok", 30),  # stored long ago: the window bounds the backfill
        (3, "skipped", 2),
        (3, "failed", 30),  # a cut walk left older days out: take the window again
    ],
)
def test_first_wanted_day(
    latest_days_ago: int | None, outcome: str | None, first_days_ago: int
) -> None:
    from tracker.collectors.tumblr import TumblrCollector, TumblrSettings
    from tracker.config import HttpSettings

    collector = TumblrCollector(TumblrSettings(), HttpSettings())
    latest = None if latest_days_ago is None else midnight(TODAY - timedelta(days=latest_days_ago))
    history = StoredHistory(latest, outcome)
    first = collector.first_wanted_day("tag:x", TODAY, history)  # type: ignore[arg-type]
    assert first == TODAY - timedelta(days=first_days_ago)


def test_targets_keep_tags_as_written_and_lower_case_blogs() -> None:
    from tracker.collectors.tumblr import TumblrCollector, TumblrSettings
    from tracker.config import HttpSettings
    from tracker.storage.history import History

    settings = TumblrSettings(
        tags=["twitter migration", " bluesky ", "twitter migration"],
        blogs=["Staff", "staff", "t:0aY0xL2Fi1OFJg4YxpmegQ"],
    )
    collector = TumblrCollector(settings, HttpSettings())
    keys = [target.key for target in collector.targets(History(None))]
    assert keys == [
        "tag:twitter migration",
        "tag:bluesky",
        "blog:staff",
        "blog:t:0ay0xl2fi1ofjg4yxpmegq",
    ]
    assert {target.base_url for target in collector.targets(History(None))} == {
        "https://api.tumblr.com"
    }
