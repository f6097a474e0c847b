"""`wikipedia` end to end: a pageviews API on 127.0.0.1, `tracker collect`, then `tracker export`.

The fake API serves the real shapes (items from the fixture payloads, the
problem+json 404 for "no data") from a table the test controls, and the expected
rows are computed from that table, not from the parser.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from tests.conftest import Workspace
from tests.support.loopback import Loopback, Reply, Request, Site
from tests.support.payloads import payload
from tests.support.sites import iso

PREFIX = "/api/rest_v1/metrics/pageviews/per-article/"
NOW = datetime(2022, 11, 9, 6, 0, tzinfo=UTC)
START = date(2022, 10, 25)

MASTODON = "en.wikipedia/Mastodon_(social_network)"
MASTODON_JA = "ja.wikipedia/マストドン_(ミニブログ)"
MIXI = "ja.wikipedia/Mixi"
ODD = "en.wikipedia/AC/DC?_100%_&_(live)"
UNKNOWN = "en.wikipedia/No_such_page_for_the_tracker"


def hand_escaped(text: str) -> str:
    return "".join(f"%{byte:02X}" for byte in text.encode("utf-8"))


# The path segments as the API must receive them, written out by hand.
SEGMENTS = {
    MASTODON: "Mastodon_(social_network)",
    MASTODON_JA: hand_escaped("マストドン") + "_(" + hand_escaped("ミニブログ") + ")",
    MIXI: "Mixi",
    ODD: "AC%2FDC%3F_100%25_%26_(live)",
    UNKNOWN: "No_such_page_for_the_tracker",
}


@dataclass
class FakeAQS:
    """The per-article daily endpoint: `views[key][day]`, or a special reply per key."""

    views: dict[str, dict[date, int]] = field(default_factory=dict)
    special: dict[str, Reply | Callable[[Request], Reply]] = field(default_factory=dict)
    asked: list[tuple[str, str, str, str]] = field(default_factory=list)
    """(key, raw article segment, start, end) of every request."""

    def __call__(self, request: Request) -> Reply:
        parts = request.path.removeprefix(PREFIX).split("/")
        if not request.path.startswith(PREFIX) or len(parts) != 7:
            return invalid_route(request.path)
        project, access, agent, segment, granularity, start, end = parts
        key = f"{project}/{unquote(segment)}"
        self.asked.append((key, segment, start, end))
        handler = self.special.get(key)
        if handler is not None:
            return handler(request) if callable(handler) else handler
        if (access, agent, granularity) != ("all-access", "user", "daily"):
            return invalid_route(request.path)
        first, last = (datetime.strptime(text, "%Y%m%d").date() for text in (start, end))
        days = {day: n for day, n in self.views.get(key, {}).items() if first <= day <= last}
        if not days:
            return no_data(request.path)
        template = payload("wikipedia/pageviews_per_article_daily.json")["items"][0]
        items = [
            template
            | {
                "project": project,
                "article": unquote(segment),
                "timestamp": f"{day:%Y%m%d}00",
                "views": n,
            }
            for day, n in sorted(days.items())
        ]
        return Reply(body={"items": items})

    def requests_for(self, key: str) -> list[tuple[str, str]]:
        return [(start, end) for asked, _, start, end in self.asked if asked == key]


def no_data(path: str) -> Reply:
    body = payload("wikipedia/error_404_no_data.json") | {"uri": path}
    return Reply(404, body, content_type="application/problem+json")


def invalid_route(path: str) -> Reply:
    body = payload("wikipedia/error_404_invalid_route.json") | {"uri": path}
    return Reply(404, body, content_type="application/problem+json")


def series(
    key: str, first: date, last: date, skip: frozenset[date] = frozenset()
) -> dict[date, int]:
    """Made-up but distinct daily numbers."""
    days = (first + timedelta(days=n) for n in range((last - first).days + 1))
    return {day: 1000 + len(key) * 37 + day.toordinal() % 101 for day in days if day not in skip}


def start_server(loopback: Loopback) -> tuple[FakeAQS, Site]:
    gap = date(2022, 10, 30)
    fake = FakeAQS(
        views={
            MASTODON: series(MASTODON, date(2022, 10, 1), date(2022, 11, 9)),
            MASTODON_JA: series(MASTODON_JA, date(2022, 10, 1), date(2022, 11, 9)),
            MIXI: series(MIXI, date(2022, 10, 1), date(2022, 11, 9), skip=frozenset({gap})),
            ODD: series(ODD, date(2022, 10, 1), date(2022, 11, 9)),
        }
    )
    return fake, loopback.add({"*": fake})


PLATFORMS = {MASTODON: "mastodon", MASTODON_JA: "mastodon", MIXI: "mixi", ODD: "test"}


def write_config(workspace: Workspace, site: Site, **extra: Any) -> None:
    articles = [
        {"wiki": "en.wikipedia", "title": "Mastodon (social network)", "platform": "mastodon"},
        {"wiki": "ja.wikipedia.org", "title": "マストドン (ミニブログ)", "platform": "mastodon"},
        {"wiki": "ja.wikipedia", "title": "Mixi", "platform": "mixi"},
        {"wiki": "en.wikipedia", "title": "AC/DC? 100% & (live)", "platform": "test"},
        {"wiki": "en.wikipedia", "title": "No such page for the tracker", "platform": "test"},
        # The same article again, spelled as in its URL: collected once.
        {"wiki": "en.wikipedia.org", "title": "Mastodon_(social_network)", "platform": "mastodon"},
    ]
    section = {"api": site.url + "/api/rest_v1", "start": START.isoformat(), "articles": articles}
    workspace.write_config({"collectors": {"wikipedia": section | extra}})


def expected_rows(fake: FakeAQS, keys: list[str], last: date) -> set[tuple[str, ...]]:
    """What the API served from START to `last`, and 0 for each day it left out before
    the newest day it served (a day without views)."""
    rows = set()
    for key in keys:
        served = {day: n for day, n in fake.views[key].items() if START <= day <= last}
        days = (
            START + timedelta(days=n) for n in range((max(served, default=START) - START).days + 1)
        )
        rows |= {
            (
                "wikipedia",
                PLATFORMS.get(key, "test"),
                key,
                "pageviews",
                "day",
                f"{day}T00:00:00Z",
                str(served.get(day, 0)),
            )
            for day in days
            if served
        }
    return rows


def exported(workspace: Workspace) -> set[tuple[str, ...]]:
    rows = [tuple(row.values()) for row in workspace.export()]
    assert len(rows) == len(set(rows)), "duplicate rows in the export"
    return set(rows)


def attempts(workspace: Workspace) -> list[tuple[str, str, str | None, str | None]]:
    with sqlite3.connect(workspace.db) as db:
        return db.execute(
            "SELECT target, outcome, error_kind, error_detail FROM attempts ORDER BY id"
        ).fetchall()


def test_first_run_backfills_every_article_from_start(
    workspace: Workspace, loopback: Loopback
) -> None:
    fake, site = start_server(loopback)
    write_config(workspace, site)
    result = workspace.run("collect", TRACKER_NOW=iso(NOW))
    assert result.returncode == 0, result.stderr
    assert "wikipedia: 5 targets: 4 ok, 1 failed, 0 skipped" in result.stdout

    yesterday = date(2022, 11, 8)
    assert exported(workspace) == expected_rows(fake, list(PLATFORMS), yesterday)
    # The day the API left out of Mixi's views (no views that day) is stored as 0.
    gap = [r for r in exported(workspace) if r[2] == MIXI and r[5].startswith("2022-10-30")]
    assert [r[6] for r in gap] == ["0"]
    # One request per article, from `start` to yesterday, titles encoded as one segment.
    assert sorted((key, segment, s, e) for key, segment, s, e in fake.asked) == sorted(
        (key, SEGMENTS[key], "20221025", "20221108") for key in SEGMENTS
    )
    agents = {r.headers.get("user-agent") for r in site.requests}
    assert len(agents) == 1
    agent = agents.pop() or ""
    assert agent.startswith("tracker/") and "(+https://example.org/tests)" in agent

    unknown = [a for a in attempts(workspace) if a[0] == UNKNOWN]
    assert unknown == [
        (UNKNOWN, "failed", "no_such_article", "no such article (or no views since 2022-10-25)")
    ]
    status = workspace.cli("status")
    [line] = [x for x in status.stdout.splitlines() if UNKNOWN in x]
    assert "last success never" in line and "no such article" in line


def test_later_runs_fetch_what_is_missing_and_revisions(
    workspace: Workspace, loopback: Loopback
) -> None:
    fake, site = start_server(loopback)
    write_config(workspace, site)
    assert workspace.cli("collect", TRACKER_NOW=iso(NOW)).returncode == 0

    # A day later: the API revised a recent day and loaded a new one.
    fake.views[MASTODON][date(2022, 11, 7)] = 77_777
    fake.asked.clear()
    later = NOW + timedelta(days=1)
    result = workspace.cli("collect", TRACKER_NOW=iso(later))
    assert result.returncode == 0, result.stdout
    assert "wikipedia: 5 targets: 4 ok, 0 failed, 1 skipped" in result.stdout
    for key in PLATFORMS:  # two days before the newest stored (2022-11-08) to yesterday
        assert fake.requests_for(key) == [("20221106", "20221109")]
    assert fake.requests_for(UNKNOWN) == []  # not asked again within a week
    assert exported(workspace) == expected_rows(fake, list(PLATFORMS), date(2022, 11, 9))
    revised = {r for r in exported(workspace) if r[2] == MASTODON and r[5].startswith("2022-11-07")}
    assert {r[6] for r in revised} == {"77777"}

    # The same day again: still complete, the last two days are asked once more.
    fake.asked.clear()
    assert workspace.cli("collect", TRACKER_NOW=iso(later)).returncode == 0
    assert fake.requests_for(MASTODON) == [("20221107", "20221109")]


def test_an_unknown_title_is_asked_again_after_a_week(
    workspace: Workspace, loopback: Loopback
) -> None:
    fake, site = start_server(loopback)
    write_config(workspace, site)
    assert workspace.cli("collect", TRACKER_NOW=iso(NOW)).returncode == 0
    for hours in (24, 24 * 3, 24 * 7 - 1):  # skips in a row do not restart the week
        when = NOW + timedelta(hours=hours)
        assert workspace.cli("collect", TRACKER_NOW=iso(when)).returncode == 0
    assert len(fake.requests_for(UNKNOWN)) == 1
    skips = [a for a in attempts(workspace) if a[0] == UNKNOWN and a[1] == "skipped"]
    assert len(skips) == 3
    assert {a[2] for a in skips} == {"not_due"}
    assert skips[-1][3] == (
        "no such article (or no views since 2022-10-25) when asked on 2022-11-09 06:00Z; "
        "asked again from 2022-11-16 06:00Z"
    )
    status = workspace.cli("status")
    [line] = [x for x in status.stdout.splitlines() if UNKNOWN in x]
    assert "not_due: no such article" in line

    # A week after the check the title is asked again; now it exists (it was created).
    fake.views[UNKNOWN] = series(UNKNOWN, date(2022, 11, 14), date(2022, 11, 15))
    week = NOW + timedelta(days=7)
    result = workspace.cli("collect", TRACKER_NOW=iso(week))
    assert result.returncode == 0
    assert fake.requests_for(UNKNOWN)[-1] == ("20221025", "20221115")
    got = {r for r in exported(workspace) if r[2] == UNKNOWN}
    assert got == expected_rows(fake, [UNKNOWN], date(2022, 11, 15))
    assert len(got) == 22  # 0 views from START until it was created on 2022-11-14


def test_no_data_on_an_update_is_not_an_error(workspace: Workspace, loopback: Loopback) -> None:
    fake, site = start_server(loopback)
    write_config(workspace, site)
    assert workspace.cli("collect", TRACKER_NOW=iso(NOW)).returncode == 0
    before = exported(workspace)
    fake.special[MIXI] = lambda request: no_data(request.path)  # days not loaded yet
    result = workspace.cli("collect", TRACKER_NOW=iso(NOW + timedelta(hours=12)))
    assert result.returncode == 0
    assert [a[1:3] for a in attempts(workspace) if a[0] == MIXI] == [("ok", None), ("ok", None)]
    assert exported(workspace) == before


def test_reparse_rebuilds_the_same_rows_and_outcomes(
    workspace: Workspace, loopback: Loopback
) -> None:
    _fake, site = start_server(loopback)
    write_config(workspace, site)
    assert workspace.cli("collect", TRACKER_NOW=iso(NOW)).returncode == 0
    assert workspace.cli("collect", TRACKER_NOW=iso(NOW + timedelta(days=1))).returncode == 0
    rows, outcomes = exported(workspace), attempts(workspace)
    with sqlite3.connect(workspace.db) as db:
        db.execute("DELETE FROM points")
    result = workspace.cli("reparse")
    assert result.returncode == 0, result.stdout
    assert exported(workspace) == rows
    assert attempts(workspace) == outcomes


def test_a_start_in_the_future_asks_nothing(workspace: Workspace, loopback: Loopback) -> None:
    fake, site = start_server(loopback)
    write_config(workspace, site, start="2022-11-20")
    result = workspace.cli("collect", TRACKER_NOW=iso(NOW))
    assert result.returncode == 0
    assert "wikipedia: 5 targets: 0 ok, 0 failed, 5 skipped" in result.stdout
    assert fake.asked == []
    details = {a[3] for a in attempts(workspace)}
    assert details == {"nothing to fetch yet: the first day wanted, 2022-11-20, has not ended"}


def test_without_articles_the_collector_says_why_it_is_skipped(workspace: Workspace) -> None:
    workspace.write_config({"collectors": {"wikipedia": {}}})
    result = workspace.cli("collect", TRACKER_NOW=iso(NOW))
    assert result.returncode == 0
    assert (
        "wikipedia: skipped, collectors.wikipedia.articles is empty: list the articles to follow"
        in result.stdout
    )


def test_moving_start_earlier_fetches_the_earlier_days_once(
    workspace: Workspace, loopback: Loopback
) -> None:
    fake, site = start_server(loopback)
    write_config(workspace, site)
    assert workspace.cli("collect", TRACKER_NOW=iso(NOW)).returncode == 0
    earlier = START - timedelta(days=10)
    write_config(workspace, site, start=earlier.isoformat())
    fake.asked.clear()
    later = NOW + timedelta(days=1)
    assert workspace.cli("collect", TRACKER_NOW=iso(later)).returncode == 0
    assert fake.requests_for(MIXI) == [("20221015", "20221109")]
    stored = {r[5][:10]: r[6] for r in exported(workspace) if r[2] == MIXI}
    assert stored == {f"{day}": str(n) for day, n in fake.views[MIXI].items() if day >= earlier} | {
        "2022-10-30": "0"
    }
    fake.asked.clear()  # from now on only the newest days again
    assert workspace.cli("collect", TRACKER_NOW=iso(later)).returncode == 0
    assert fake.requests_for(MIXI) == [("20221107", "20221109")]


def test_an_answer_with_a_rejected_day_is_not_asked_for_again_every_run(
    workspace: Workspace, loopback: Loopback
) -> None:
    fake, site = start_server(loopback)
    fake.views[MIXI] = series(MIXI, date(2022, 11, 1), date(2022, 11, 9))
    fake.views[MIXI][date(2022, 11, 3)] = -4  # rejected: the answer's gaps are not filled
    write_config(workspace, site)
    assert workspace.cli("collect", TRACKER_NOW=iso(NOW)).returncode == 0
    stored = {r[5][:10] for r in exported(workspace) if r[2] == MIXI}
    assert min(stored) == "2022-11-01" and "2022-11-03" not in stored  # after `start`
    # Two days before the newest stored day to yesterday, never from `start` again.
    for days, asked in ((1, ("20221106", "20221109")), (2, ("20221107", "20221110"))):
        fake.asked.clear()
        assert workspace.cli("collect", TRACKER_NOW=iso(NOW + timedelta(days=days))).returncode == 0
        assert fake.requests_for(MIXI) == [asked]
