"""A hostile AT Protocol world: relays and PDSes that hang, lie, loop and break mid-listing.

All are collected in one run beside a healthy relay and a healthy PDS. The run must
end within the deadline, record each failure with its kind, never store a partial
listing as a count, and lose nothing of the healthy servers' data.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import Workspace
from tests.support import payloads as pl
from tests.support.bluesky.sites import (
    DESCRIBE,
    LIST_HOSTS,
    LIST_REPOS,
    PdsSpec,
    RelaySpec,
    host,
    repo,
)
from tests.support.hostile import Flaky, collect_and_read
from tests.support.loopback import Loopback, Reply, Request, Routes, Site, dead_url
from tests.support.sites import iso

NOW = datetime(2024, 11, 20, 12, 0, tzinfo=UTC)
DEADLINE = 4.0
MAX_PAGES = 20


def endless(delay: float = 0.0) -> Any:
    """A listing that never ends: one new repo and a new cursor on every page."""
    counter = itertools.count()

    def handle(request: Request) -> Reply:
        number = next(counter)
        return Reply(body={"cursor": f"c{number}", "repos": [repo(number)]}, delay=delay)

    return handle


def same_cursor(request: Request) -> Reply:
    return Reply(body={"cursor": "again", "repos": [repo(1), repo(2)]})


def fails_after_first_page(request: Request) -> Reply:
    if request.param("cursor") is None:
        return Reply(body={"cursor": "p1", "repos": [repo(1), repo(2)]})
    return Reply(500, {"error": "InternalServerError", "message": "Internal Server Error"})


def pds(list_repos: Any, describe: Any = None) -> Routes:
    return {
        f"GET {DESCRIBE}": describe or Reply(body=PdsSpec(invite_required=False).describe()),
        f"GET {LIST_REPOS}": list_repos,
    }


LYING_HOSTS = [
    host("liar-negative.example", -4),
    host("liar-fraction.example", 12.5),
    host("liar-huge.example", 99_000_000_000),
    host("liar-string.example", "many"),
    host("honest-string.example", "40"),
    host(None, 5),
    host("no-count.example", None),
    host("no-status.example", 2, status=None),
]

HOSTILE: dict[str, Any] = {
    "relay_hang": ("relay", lambda: {"*": Reply(hang=True)}),
    "relay_drip": (
        "relay",
        lambda: {
            f"GET {LIST_HOSTS}": Reply(body=pl.payload("bluesky/listHosts_relay.json"), drip=0.2)
        },
    ),
    "relay_html": (
        "relay",
        lambda: {
            f"GET {LIST_HOSTS}": Reply(
                body="<!DOCTYPE html><html>Relay</html>", content_type="text/html"
            )
        },
    ),
    "relay_lies": ("relay", lambda: RelaySpec(hosts=LYING_HOSTS, page_size=3).routes()),
    "relay_429_then_ok": (
        "relay",
        lambda: {
            f"GET {LIST_HOSTS}": Flaky(
                RelaySpec(hosts=[host("flaky.example", 8)]).routes()[f"GET {LIST_HOSTS}"],
                "1",
                pl.payload("bluesky/error_429_rate_limit.json"),
            )
        },
    ),
    "pds_503": ("pds", lambda: {"*": Reply(503, b"<html>busy</html>", content_type="text/html")}),
    "pds_truncated": ("pds", lambda: pds(Reply(body=b'{"cursor": "1", "repos": [{"did": "di'))),
    "pds_cut_connection": (
        "pds",
        lambda: pds(Reply(body={"repos": [repo(n) for n in range(50)]}, truncate_at=100)),
    ),
    "pds_no_repos_key": ("pds", lambda: pds(Reply(body={"repositories": []}))),
    "pds_cursor_loop": ("pds", lambda: pds(same_cursor)),
    "pds_endless": ("pds", lambda: pds(endless())),
    "pds_endless_slow": ("pds", lambda: pds(endless(delay=0.5))),
    "pds_fails_midway": ("pds", lambda: pds(fails_after_first_page)),
    "pds_huge": ("pds", lambda: pds(Reply(body=b'{"repos": [', stream_bytes=50_000_000))),
    "pds_not_atproto": ("pds", lambda: {}),
    "refused": ("pds", None),
}

# (outcome, error kind) per hostile server.
EXPECTED = {
    "relay_hang": ("failed", "timeout"),
    "relay_drip": ("failed", "deadline"),
    "relay_html": ("failed", "not_json"),
    "relay_lies": ("ok", None),
    "relay_429_then_ok": ("ok", None),
    "pds_503": ("failed", "http_503"),
    "pds_truncated": ("failed", "bad_json"),
    "pds_cut_connection": ("failed", "protocol"),
    "pds_no_repos_key": ("failed", "bad_shape"),
    "pds_cursor_loop": ("failed", "cursor_loop"),
    "pds_endless": ("failed", "too_many_pages"),
    "pds_endless_slow": ("failed", "deadline"),
    "pds_fails_midway": ("failed", "http_500"),
    "pds_huge": ("failed", "too_large"),
    "pds_not_atproto": ("failed", "not_implemented"),
    "refused": ("failed", "refused"),
}


def key(url: str) -> str:
    return url.removeprefix("http://")


@pytest.fixture(scope="module")
def hostile_run(loopback: Loopback, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workspace = Workspace(tmp_path_factory.mktemp("bluesky-hostile"))
    sites: dict[str, Site] = {}
    urls: dict[str, str] = {}
    relays, servers = [], []
    for name, (role, make) in HOSTILE.items():
        if make is None:
            urls[name] = dead_url()
        else:
            sites[name] = loopback.add(make())
            urls[name] = sites[name].url
        (relays if role == "relay" else servers).append(urls[name])
    healthy_relay_spec = RelaySpec()
    healthy_pds_spec = PdsSpec(active=4, inactive=("deactivated",), page_size=2)
    healthy_relay = loopback.add(healthy_relay_spec.routes())
    healthy_pds = loopback.add(healthy_pds_spec.routes())
    workspace.write_config(
        {
            "http": {"timeout": 2, "deadline": DEADLINE, "retries": 2, "max_bytes": 1_000_000},
            "collectors": {
                "bluesky": {
                    "relays": [healthy_relay.url, *relays],
                    "pds": [healthy_pds.url, *servers],
                    "max_pages": MAX_PAGES,
                }
            },
        }
    )
    run = collect_and_read(workspace, TRACKER_NOW=iso(NOW))
    return {
        **run,
        "workspace": workspace,
        "urls": urls,
        "sites": sites,
        "healthy_relay": (healthy_relay, healthy_relay_spec),
        "healthy_pds": (healthy_pds, healthy_pds_spec),
        "export": workspace.export(),
    }


def stored(run: dict[str, Any], target: str) -> dict[str, str]:
    return {row["metric"]: row["value"] for row in run["export"] if row["target"] == target}


def test_run_completes_within_the_deadline(hostile_run: dict[str, Any]) -> None:
    result = hostile_run["result"]
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert hostile_run["elapsed"] < DEADLINE + 8, hostile_run["elapsed"]
    total = len(EXPECTED) + 2
    ok = sum(1 for outcome, _ in EXPECTED.values() if outcome == "ok") + 2
    assert f"bluesky: {total} targets: {ok} ok, {total - ok} failed, 0 skipped" in result.stdout


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_hostile_server_is_recorded_with_its_kind(
    hostile_run: dict[str, Any], name: str
) -> None:
    outcome, kind, detail = hostile_run["attempts"][key(hostile_run["urls"][name])]
    assert (outcome, kind) == EXPECTED[name], detail


@pytest.mark.parametrize("name", [n for n, (outcome, _) in EXPECTED.items() if outcome == "failed"])
def test_no_failed_listing_leaves_a_count(hostile_run: dict[str, Any], name: str) -> None:
    target = key(hostile_run["urls"][name])
    metrics = stored(hostile_run, target) | stored(hostile_run, f"relay:{target}")
    assert set(metrics) <= {"registrations_open"}, metrics


def test_a_pds_failing_mid_listing_keeps_its_registration_state(
    hostile_run: dict[str, Any],
) -> None:
    target = key(hostile_run["urls"]["pds_fails_midway"])
    assert stored(hostile_run, target) == {"registrations_open": "1"}
    detail = hostile_run["attempts"][target][2]
    assert "page 2" in detail and "partial count is not stored" in detail


def test_healthy_servers_lose_nothing(hostile_run: dict[str, Any]) -> None:
    relay, relay_spec = hostile_run["healthy_relay"]
    active = [h for h in relay_spec.hosts if h["status"] == "active"]
    assert stored(hostile_run, f"relay:{key(relay.url)}") == {
        "users_total": str(sum(h["accountCount"] for h in active)),
        "servers_total": str(len(active)),
    }
    for entry in relay_spec.hosts:
        assert stored(hostile_run, f"relay:{key(relay.url)}/{entry['hostname']}") == {
            "users_total": str(entry["accountCount"])
        }
    pds_site, _ = hostile_run["healthy_pds"]
    assert stored(hostile_run, key(pds_site.url)) == {
        "users_total": "5",
        "users_active": "4",
        "registrations_open": "0",
    }


def test_lies_are_rejected_with_reasons_and_truths_kept(hostile_run: dict[str, Any]) -> None:
    relay = key(hostile_run["urls"]["relay_lies"])
    reasons = {reason for target, _, _, reason in hostile_run["rejections"] if target == relay}
    assert reasons == {
        "liar-negative.example: negative count",
        "liar-fraction.example: fractional count",
        "liar-huge.example: implausibly large (over 10,000,000,000)",
        "liar-string.example: not a number",
        "not a valid host name",
    }
    assert stored(hostile_run, f"relay:{relay}/honest-string.example") == {"users_total": "40"}
    assert stored(hostile_run, f"relay:{relay}/no-status.example") == {"users_total": "2"}
    assert stored(hostile_run, f"relay:{relay}/no-count.example") == {}
    assert stored(hostile_run, f"relay:{relay}") == {"users_total": "42", "servers_total": "2"}


def test_retry_after_is_honoured(hostile_run: dict[str, Any]) -> None:
    target = key(hostile_run["urls"]["relay_429_then_ok"])
    first = next(row for row in hostile_run["fetch_log"] if row[0] == target)
    assert first[4] == 2 and first[5] >= 900  # two tries, about a second apart
    assert stored(hostile_run, f"relay:{target}/flaky.example") == {"users_total": "8"}


def test_loops_and_endless_listings_stop(hostile_run: dict[str, Any]) -> None:
    loop = hostile_run["sites"]["pds_cursor_loop"]
    assert loop.count(LIST_REPOS) == 2
    endless_site = hostile_run["sites"]["pds_endless"]
    assert endless_site.count(LIST_REPOS) == MAX_PAGES
