"""A hostile pageviews API: one article per kind of trouble, all in one run.

The run must end within the deadline, record each article's failure with its
kind, keep the rejected numbers with their reasons, and lose nothing of the
healthy article's data.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from tests.collectors.test_wikipedia import PREFIX, FakeAQS, invalid_route, series
from tests.conftest import Workspace
from tests.support.hostile import Flaky, collect_and_read
from tests.support.loopback import Loopback, Reply
from tests.support.payloads import payload
from tests.support.sites import iso

NOW = datetime(2022, 11, 9, 6, 0, tzinfo=UTC)
START = date(2022, 11, 1)
DEADLINE = 4.0


def real_items(**changes: Any) -> dict[str, Any]:
    """The fixture payload's five days (2022-11-01..05), relabelled for one article."""
    document: dict[str, Any] = payload("wikipedia/pageviews_per_article_daily.json")
    for item in document["items"]:
        item.update(changes)
    return document


def lies() -> dict[str, Any]:
    document = real_items(project="en.wikipedia", article="Lies")
    values = ["1200", -4, 12.5, 99_000_000_000, True]
    for item, value in zip(document["items"], values, strict=True):
        item["views"] = value
    return document


def missing_fields() -> dict[str, Any]:
    document = real_items(project="en.wikipedia", article="Missing_fields")
    for item in document["items"]:
        del item["views"]
    del document["items"][0]["timestamp"]
    return document


HOSTILE: dict[str, Any] = {
    "Hang": lambda: Reply(hang=True),
    "Drip": lambda: Reply(body=real_items(article="Drip"), drip=0.25),
    "Busy": lambda: Reply(503, b"<html>busy</html>", content_type="text/html"),
    "Throttled": lambda: Flaky(Reply(body=real_items(article="Throttled")), "1"),
    "Throttled_for_an_hour": lambda: Flaky(Reply(body=real_items()), "3600"),
    "Html": lambda: Reply(
        body="<!DOCTYPE html><html>Wikimedia Error</html>", content_type="text/html"
    ),
    "Truncated": lambda: Reply(body=b'{"items": [{"project": "en.wikipedia", "views": 3'),
    "Cut_connection": lambda: Reply(body=real_items(article="Cut_connection"), truncate_at=40),
    "Lies": lambda: Reply(body=lies()),
    "Missing_fields": lambda: Reply(body=missing_fields()),
    "No_items": lambda: Reply(body={"detail": "something else"}),
    "Invalid_route": lambda: lambda request: invalid_route(request.path),
    "Html_404": lambda: Reply(404, b"<html>Not Found</html>", content_type="text/html"),
}

EXPECTED = {
    "Hang": ("failed", "timeout"),
    "Drip": ("failed", "deadline"),
    "Busy": ("failed", "http_503"),
    "Throttled": ("ok", None),
    "Throttled_for_an_hour": ("failed", "rate_limited"),
    "Html": ("failed", "not_json"),
    "Truncated": ("failed", "bad_json"),
    "Cut_connection": ("failed", "protocol"),
    "Lies": ("ok", None),
    "Missing_fields": ("failed", "bad_shape"),
    "No_items": ("failed", "bad_shape"),
    "Invalid_route": ("failed", "bad_request"),
    "Html_404": ("failed", "http_404"),
    "Healthy": ("ok", None),
}


def key(title: str) -> str:
    return f"en.wikipedia/{title}"


@pytest.fixture(scope="module")
def hostile_run(loopback: Loopback, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workspace = Workspace(tmp_path_factory.mktemp("wikipedia_hostile"))
    fake = FakeAQS(
        views={key("Healthy"): series(key("Healthy"), START, date(2022, 11, 8))},
        special={key(title): make() for title, make in HOSTILE.items()},
    )
    site = loopback.add({"*": fake})
    articles = [{"wiki": "en.wikipedia", "title": title, "platform": "test"} for title in EXPECTED]
    workspace.write_config(
        {
            "http": {"timeout": 2, "deadline": DEADLINE, "retries": 2},
            "collectors": {
                "wikipedia": {
                    "api": site.url + "/api/rest_v1",
                    "start": START.isoformat(),
                    "articles": articles,
                }
            },
        }
    )
    run = collect_and_read(workspace, TRACKER_NOW=iso(NOW))
    return {
        **run,
        "workspace": workspace,
        "fake": fake,
    }


def test_the_run_ends_within_the_deadline(hostile_run: dict[str, Any]) -> None:
    result = hostile_run["result"]
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert hostile_run["elapsed"] < DEADLINE + 6, hostile_run["elapsed"]
    ok = sum(1 for outcome, _ in EXPECTED.values() if outcome == "ok")
    failed = len(EXPECTED) - ok
    assert f"{len(EXPECTED)} targets: {ok} ok, {failed} failed, 0 skipped" in result.stdout


@pytest.mark.parametrize("title", sorted(EXPECTED))
def test_each_kind_of_trouble_is_recorded(hostile_run: dict[str, Any], title: str) -> None:
    outcome, kind, detail = hostile_run["attempts"][key(title)]
    assert (outcome, kind) == EXPECTED[title], detail


def test_healthy_and_recovered_articles_lose_nothing(hostile_run: dict[str, Any]) -> None:
    workspace: Workspace = hostile_run["workspace"]
    rows = {tuple(r.values()) for r in workspace.export()}
    healthy = hostile_run["fake"].views[key("Healthy")]
    throttled = {
        datetime.strptime(item["timestamp"], "%Y%m%d%H").date(): item["views"]
        for item in real_items()["items"]
    }
    expected = {
        ("wikipedia", "test", key(title), "pageviews", "day", f"{day}T00:00:00Z", str(n))
        for title, days in (("Healthy", healthy), ("Throttled", throttled))
        for day, n in days.items()
    } | {("wikipedia", "test", key("Lies"), "pageviews", "day", "2022-11-01T00:00:00Z", "1200")}
    assert rows == expected


def test_lies_and_gaps_are_kept_with_their_reasons(hostile_run: dict[str, Any]) -> None:
    by_target: dict[str, list[tuple[str, str, str]]] = {}
    for target, metric, raw, reason in hostile_run["rejections"]:
        by_target.setdefault(target, []).append((metric, raw, reason))
    assert by_target[key("Lies")] == [
        ("pageviews", "-4", "negative count on 2022-11-02"),
        ("pageviews", "12.5", "fractional count on 2022-11-03"),
        ("pageviews", "99000000000", "implausibly large (over 10,000,000,000) on 2022-11-04"),
        ("pageviews", "True", "not a number (boolean) on 2022-11-05"),
    ]
    assert by_target[key("Missing_fields")] == [
        ("timestamp", "None", "not a daily timestamp"),
        *[("pageviews", "(absent)", f"no views count on 2022-11-0{n}") for n in range(2, 6)],
    ]


def test_the_invalid_route_is_reported_as_a_bug(hostile_run: dict[str, Any]) -> None:
    _, _, detail = hostile_run["attempts"][key("Invalid_route")]
    assert detail.startswith("the API refused the request as malformed (invalid route): ")
    assert PREFIX + "en.wikipedia/all-access/user/Invalid_route/daily/" in detail


def test_retry_after_is_honoured_and_an_hour_is_not_waited(hostile_run: dict[str, Any]) -> None:
    fake: FakeAQS = hostile_run["fake"]
    assert len(fake.requests_for(key("Throttled"))) == 2
    assert len(fake.requests_for(key("Throttled_for_an_hour"))) == 1
    _, _, detail = hostile_run["attempts"][key("Throttled_for_an_hour")]
    assert "deadline" in detail
