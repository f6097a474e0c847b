"""A hostile world: one run against servers that refuse, hang, drip, lie and loop.

All of them are collected in one run beside a healthy server. The run must finish
within the deadline, record each failure with its kind, and lose nothing of the
healthy server's data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import Workspace
from tests.support import payloads as pl
from tests.support.hostile import Flaky, collect_and_read
from tests.support.loopback import Loopback, Reply, Routes, Site, dead_url
from tests.support.sites import MastodonSpec, iso, wellknown_route

NOW = datetime(2022, 11, 9, 12, 0, tzinfo=UTC)
DEADLINE = 4.0


def nodeinfo_site(nodeinfo: Reply, **extra: Any) -> Routes:
    return {
        "GET /.well-known/nodeinfo": wellknown_route("2.0"),
        "GET /nodeinfo/2.0": nodeinfo,
        **extra,
    }


def good_nodeinfo(users: Any = 10, active: Any = 5, half: Any = 7, posts: Any = 100) -> Any:
    return pl.mastodon_nodeinfo(users, active, half, posts) | {
        "software": {"name": "pleroma", "version": "2.5"}
    }


RATE_LIMITED = pl.payload("fediverse/mastodon/error_429_rate_limited.json")

HOSTILE: dict[str, Any] = {
    "hang": lambda: {"*": Reply(hang=True)},
    "drip": lambda: {
        "GET /robots.txt": Reply(404, b""),
        "GET /.well-known/nodeinfo": Reply(body=pl.wellknown("http://x", "2.0"), drip=0.25),
    },
    "always_503": lambda: {"*": Reply(503, b"<html>busy</html>", content_type="text/html")},
    "retry_after_1s": lambda: nodeinfo_site(Flaky(Reply(body=good_nodeinfo()), "1", RATE_LIMITED)),
    "retry_after_1h": lambda: nodeinfo_site(
        Flaky(Reply(body=good_nodeinfo()), "3600", RATE_LIMITED)
    ),
    "redirect_loop": lambda: {
        "GET /.well-known/nodeinfo": Reply(302, b"", headers={"Location": "/.well-known/nodeinfo"})
    },
    "html": lambda: nodeinfo_site(
        Reply(body="<!DOCTYPE html><html><body>Hi</body></html>", content_type="text/html")
    ),
    "truncated_json": lambda: nodeinfo_site(Reply(body=b'{"version": "2.0", "software": {"na')),
    "cut_connection": lambda: nodeinfo_site(Reply(body=good_nodeinfo(), truncate_at=40)),
    "huge_declared": lambda: nodeinfo_site(Reply(body=b"{}", stream_bytes=50_000_000)),
    "huge_undeclared": lambda: nodeinfo_site(
        Reply(body=b"[", stream_bytes=50_000_000, no_length=True)
    ),
    "text_plain": lambda: nodeinfo_site(Reply(body=good_nodeinfo(), content_type="text/plain")),
    "strings_and_lies": lambda: nodeinfo_site(
        Reply(body=good_nodeinfo(users="1200", active="-4", half=12.5, posts=99_000_000_000))
    ),
    "missing_fields": lambda: nodeinfo_site(
        Reply(body={"version": "2.0", "software": {"name": "x"}})
    ),
    "active_above_total": lambda: nodeinfo_site(
        Reply(body=good_nodeinfo(users=10, active=50, half=8))
    ),
    "robots_disallow_all": lambda: {
        "GET /robots.txt": Reply(
            body="User-agent: tracker\nDisallow: /\n", content_type="text/plain"
        ),
        **nodeinfo_site(Reply(body=good_nodeinfo())),
    },
}

# (outcome, error kind) per hostile server; the kinds are the fetch log's vocabulary.
EXPECTED = {
    "hang": ("failed", "timeout"),
    "drip": ("failed", "deadline"),
    "always_503": ("failed", "http_503"),
    "retry_after_1s": ("ok", None),
    "retry_after_1h": ("failed", "rate_limited"),
    "redirect_loop": ("failed", "redirect_loop"),
    "html": ("failed", "not_json"),
    "truncated_json": ("failed", "bad_json"),
    "cut_connection": ("failed", "protocol"),
    "huge_declared": ("failed", "too_large"),
    "huge_undeclared": ("failed", "too_large"),
    "text_plain": ("ok", None),
    "strings_and_lies": ("ok", None),
    "missing_fields": ("failed", "bad_shape"),
    "active_above_total": ("ok", None),
    "robots_disallow_all": ("skipped", "robots"),
    "refused": ("failed", "refused"),
}


@pytest.fixture(scope="module")
def hostile_run(loopback: Loopback, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workspace = Workspace(tmp_path_factory.mktemp("hostile"))
    sites: dict[str, Site] = {name: loopback.add(make()) for name, make in HOSTILE.items()}
    healthy_spec = MastodonSpec(robots="User-agent: *\nDisallow: /api/v1/instance/peers\n")
    healthy = loopback.add(healthy_spec.routes(NOW))
    urls = {name: site.url for name, site in sites.items()} | {"refused": dead_url()}
    workspace.write_config(
        {
            "http": {"timeout": 2, "deadline": DEADLINE, "retries": 2, "max_bytes": 1_000_000},
            "collectors": {"fediverse": {"instances": [healthy.url, *urls.values()]}},
        }
    )
    run = collect_and_read(workspace, TRACKER_NOW=iso(NOW))
    return {
        **run,
        "workspace": workspace,
        "urls": urls,
        "sites": sites,
        "healthy": healthy,
        "healthy_spec": healthy_spec,
    }


def key(url: str) -> str:
    return url.removeprefix("http://")


def test_run_completes_within_the_deadline(hostile_run: dict[str, Any]) -> None:
    result = hostile_run["result"]
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    # Targets run concurrently: the whole run is bounded by one deadline, plus start-up.
    assert hostile_run["elapsed"] < DEADLINE + 6, hostile_run["elapsed"]
    total = len(EXPECTED) + 1
    ok = sum(1 for outcome, _ in EXPECTED.values() if outcome == "ok") + 1
    skipped = sum(1 for outcome, _ in EXPECTED.values() if outcome == "skipped")
    failed = total - ok - skipped
    assert f"{total} targets: {ok} ok, {failed} failed, {skipped} skipped" in result.stdout


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_hostile_server_is_recorded_with_its_kind(
    hostile_run: dict[str, Any], name: str
) -> None:
    outcome, kind, detail = hostile_run["attempts"][key(hostile_run["urls"][name])]
    assert (outcome, kind) == EXPECTED[name], detail


def test_healthy_server_loses_nothing(hostile_run: dict[str, Any]) -> None:
    workspace: Workspace = hostile_run["workspace"]
    healthy = key(hostile_run["healthy"].url)
    got = {tuple(row.values()) for row in workspace.export() if row["target"] == healthy}
    expected = hostile_run["healthy_spec"].expected(healthy, NOW)
    # robots.txt keeps us off /peers: that one metric is absent, everything else is there.
    assert got == {row for row in expected if row[3] != "peers_total"}
    log = [
        row for row in hostile_run["fetch_log"] if row[0] == healthy and row[1] == "mastodon_peers"
    ]
    assert [row[3] for row in log] == ["robots"]


def test_retry_after_is_honoured_and_an_hour_is_not_waited(hostile_run: dict[str, Any]) -> None:
    log = {(row[0], row[1]): row for row in hostile_run["fetch_log"]}
    short = log[(key(hostile_run["urls"]["retry_after_1s"]), "nodeinfo")]
    assert short[4] == 2 and short[5] >= 900  # two tries, about a second apart
    long = log[(key(hostile_run["urls"]["retry_after_1h"]), "nodeinfo")]
    assert long[3] == "rate_limited" and long[4] == 1 and long[5] < 1000


def test_lies_are_rejected_with_reasons_and_truths_kept(hostile_run: dict[str, Any]) -> None:
    target = key(hostile_run["urls"]["strings_and_lies"])
    reasons = {
        (metric, reason) for t, metric, _, reason in hostile_run["rejections"] if t == target
    }
    assert reasons == {
        ("users_active_month", "negative count"),
        ("users_active_halfyear", "fractional count"),
        ("posts_total", "implausibly large (over 10,000,000,000)"),
    }
    workspace: Workspace = hostile_run["workspace"]
    stored = {row["metric"]: row["value"] for row in workspace.export() if row["target"] == target}
    assert stored == {"users_total": "1200", "registrations_open": "1"}

    target = key(hostile_run["urls"]["active_above_total"])
    stored = {row["metric"]: row["value"] for row in workspace.export() if row["target"] == target}
    assert stored["users_total"] == "10" and "users_active_month" not in stored
    assert stored["users_active_halfyear"] == "8"


def test_robots_disallow_means_nothing_else_is_fetched(hostile_run: dict[str, Any]) -> None:
    site = hostile_run["sites"]["robots_disallow_all"]
    assert [request.path for request in site.requests] == ["/robots.txt"]
