"""`tracker collect` against simulated relays and PDSes on 127.0.0.1, checked through export.

The servers page in small pages whatever `limit` asks (tests/support/bluesky/sites.py),
so every listing here spans several pages and the cursor chain is exercised.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from urllib.parse import parse_qs

from tests.conftest import Workspace
from tests.support.bluesky.sites import LIST_HOSTS, LIST_REPOS, PdsSpec, RelaySpec, host
from tests.support.loopback import Loopback, Reply, dead_url
from tests.support.sites import iso

NOW = datetime(2024, 11, 20, 12, 0, tzinfo=UTC)


def key(url: str) -> str:
    return url.removeprefix("http://")


def relay_total(url: str) -> str:
    """Where a relay's network total and `servers_total` are stored."""
    return f"relay:{key(url)}"


def relay_host(url: str, host: str) -> str:
    """Where a relay's reading of one host is stored (a PDS keeps its plain key)."""
    return f"relay:{key(url)}/{host}"


def rows(workspace: Workspace) -> set[tuple[str, ...]]:
    exported = workspace.export()
    as_tuples = [tuple(row.values()) for row in exported]
    assert len(as_tuples) == len(set(as_tuples)), "duplicate rows in the export"
    return set(as_tuples)


def attempts(workspace: Workspace) -> dict[str, tuple[str, str | None, str | None]]:
    with sqlite3.connect(workspace.db) as db:
        return {
            target: (outcome, kind, detail)
            for target, outcome, kind, detail in db.execute(
                "SELECT target, outcome, error_kind, error_detail FROM attempts"
            )
        }


def config(relays: list[str], pds: list[str], **extra: object) -> dict[str, object]:
    return {"collectors": {"bluesky": {"relays": relays, "pds": pds, **extra}}}


def test_relay_and_pds_counts_match_what_the_servers_published(
    workspace: Workspace, loopback: Loopback
) -> None:
    relay_spec = RelaySpec()  # the fixture payload's four hosts, two per page
    pds_spec = PdsSpec(active=5, inactive=("deactivated", "takendown"), page_size=3)
    relay = loopback.add(relay_spec.routes())
    pds = loopback.add(pds_spec.routes())
    workspace.write_config(config([relay.url], [pds.url, pds.url + "/"]))

    result = workspace.run("collect", TRACKER_NOW=iso(NOW))
    assert result.returncode == 0, result.stderr
    assert "bluesky: 2 targets: 2 ok, 0 failed, 0 skipped" in result.stdout

    at = iso(NOW)
    hosts = relay_spec.hosts
    active_hosts = [h for h in hosts if h["status"] == "active"]
    expected = {
        (
            "bluesky",
            "bluesky",
            relay_host(relay.url, h["hostname"]),
            "users_total",
            "",
            at,
            str(h["accountCount"]),
        )
        for h in hosts
    } | {
        (
            "bluesky",
            "bluesky",
            relay_total(relay.url),
            "users_total",
            "",
            at,
            str(sum(h["accountCount"] for h in active_hosts)),
        ),
        (
            "bluesky",
            "bluesky",
            relay_total(relay.url),
            "servers_total",
            "",
            at,
            str(len(active_hosts)),
        ),
        ("bluesky", "bluesky", key(pds.url), "users_total", "", at, "7"),
        ("bluesky", "bluesky", key(pds.url), "users_active", "", at, "5"),
        ("bluesky", "bluesky", key(pds.url), "registrations_open", "", at, "0"),
    }
    assert rows(workspace) == expected

    # 4 hosts in pages of 2: two full pages, then the empty page that ends it.
    host_pages = [r for r in relay.requests if r.path == LIST_HOSTS]
    assert [r.param("cursor") for r in host_pages] == [None, "201", "203"]
    # 7 repos in pages of 3: the PDS's own cursors are passed back verbatim.
    repo_pages = [r for r in pds.requests if r.path == LIST_REPOS]
    assert len(repo_pages) == 4
    repos = pds_spec.repos
    assert [r.param("cursor") for r in repo_pages[1:]] == [
        f"{1700000000000 + i}::{repos[i]['did']}" for i in (2, 5, 6)
    ]
    assert {parse_qs(r.query)["limit"][0] for r in host_pages + repo_pages} == {"1000"}


def test_page_size_is_the_limit_sent(workspace: Workspace, loopback: Loopback) -> None:
    pds = loopback.add(PdsSpec(active=2, inactive=()).routes())
    workspace.write_config(config([], [pds.url], page_size=50))
    assert workspace.run("collect", TRACKER_NOW=iso(NOW)).returncode == 0
    assert {r.param("limit") for r in pds.requests if r.path == LIST_REPOS} == {"50"}


def test_relays_without_list_hosts_are_recorded_as_such(
    workspace: Workspace, loopback: Loopback
) -> None:
    plain_404 = loopback.add({})
    xrpc_501 = loopback.add(
        {
            f"GET {LIST_HOSTS}": Reply(
                501, {"error": "MethodNotImplemented", "message": "Method Not Implemented"}
            )
        }
    )
    good = loopback.add(RelaySpec(hosts=[host("pds.one.example", 3)]).routes())
    workspace.write_config(config([plain_404.url, xrpc_501.url, good.url], []))

    result = workspace.run("collect", TRACKER_NOW=iso(NOW))
    assert result.returncode == 0, result.stderr
    assert "bluesky: 3 targets: 1 ok, 2 failed, 0 skipped" in result.stdout
    outcomes = attempts(workspace)
    for site in (plain_404, xrpc_501):
        outcome, kind, detail = outcomes[key(site.url)]
        assert (outcome, kind) == ("failed", "not_implemented")
        assert detail is not None and "com.atproto.sync.listHosts" in detail
    assert outcomes[key(good.url)][:2] == ("ok", None)
    assert {(r["target"], r["metric"], r["value"]) for r in workspace.export()} == {
        (relay_host(good.url, "pds.one.example"), "users_total", "3"),
        (relay_total(good.url), "users_total", "3"),
        (relay_total(good.url), "servers_total", "1"),
    }
    assert "not_implemented" in workspace.run("status").stdout


def test_one_url_as_relay_and_as_pds_is_two_attempts_and_two_series(
    workspace: Workspace, loopback: Loopback
) -> None:
    """Issue 10, item 4: the relay's total of its hosts and the PDS's own listing
    are different counts; each has its own series."""
    relay_spec = RelaySpec()
    both = loopback.add({**relay_spec.routes(), **PdsSpec(active=1, inactive=()).routes()})
    workspace.write_config(config([both.url], [both.url]))
    result = workspace.run("collect", TRACKER_NOW=iso(NOW))
    assert "bluesky: 2 targets: 2 ok" in result.stdout, result.stdout + result.stderr
    stored = {(r["target"], r["metric"]): r["value"] for r in workspace.export()}
    active = [h for h in relay_spec.hosts if h["status"] == "active"]
    assert stored[(relay_total(both.url), "users_total")] == str(
        sum(h["accountCount"] for h in active)
    )
    assert stored[(relay_total(both.url), "servers_total")] == str(len(active))
    assert {m: v for (t, m), v in stored.items() if t == key(both.url)} == {
        "users_total": "1",
        "users_active": "1",
        "registrations_open": "0",
    }


def test_a_pds_the_relay_lists_keeps_its_own_count(
    workspace: Workspace, loopback: Loopback
) -> None:
    pds = loopback.add(PdsSpec(active=2, inactive=("deactivated",)).routes())
    listed = key(pds.url)  # the relay counts 50 accounts there; the PDS lists 3
    relay = loopback.add(RelaySpec(hosts=[host(listed, 50), host("other.example", 4)]).routes())
    workspace.write_config(config([relay.url], [pds.url]))
    assert workspace.run("collect", TRACKER_NOW=iso(NOW)).returncode == 0
    stored = {(r["target"], r["metric"]): r["value"] for r in workspace.export()}
    assert stored[(listed, "users_total")] == "3"
    assert stored[(relay_host(relay.url, listed), "users_total")] == "50"
    assert stored[(relay_total(relay.url), "users_total")] == "54"
    assert len(stored) == 3 + 3 + 1  # PDS: 3 metrics; relay: 2 hosts, total, servers


def test_default_config_asks_the_real_relay_and_no_pds() -> None:
    from tracker.collectors.bluesky import BlueskySettings

    settings = BlueskySettings()
    assert settings.relays == ["https://bsky.network"] and settings.pds == []


def test_a_bad_url_in_the_config_is_one_line_naming_the_key(workspace: Workspace) -> None:
    workspace.write_config(config(["https://bsky.network"], ["https://pds.example/some/path"]))
    result = workspace.cli("collect")
    assert result.returncode != 0
    message = (result.stderr or result.stdout).strip()
    assert len(message.splitlines()) == 1
    assert "collectors.bluesky.pds" in message and "item 0" in message
    workspace.write_config(config(["ftp://relay.example"], []))
    message = (workspace.cli("collect").stderr or "").strip()
    assert "collectors.bluesky.relays" in message


def test_a_dead_pds_fails_alone(workspace: Workspace, loopback: Loopback) -> None:
    good = loopback.add(PdsSpec(active=2, inactive=("deactivated",)).routes())
    dead = dead_url()
    workspace.write_config(config([], [dead, good.url]))
    result = workspace.run("collect", TRACKER_NOW=iso(NOW))
    assert result.returncode == 0, result.stderr
    outcomes = attempts(workspace)
    assert outcomes[key(dead)][:2] == ("failed", "refused")
    stored = {(r["metric"], r["value"]) for r in workspace.export() if r["target"] == key(good.url)}
    assert stored == {("users_total", "3"), ("users_active", "2"), ("registrations_open", "0")}


def test_reparse_rebuilds_the_same_rows_from_the_archive(
    workspace: Workspace, loopback: Loopback
) -> None:
    relay = loopback.add(RelaySpec().routes())
    pds = loopback.add(PdsSpec().routes())
    workspace.write_config(config([relay.url], [pds.url]))
    assert workspace.run("collect", TRACKER_NOW=iso(NOW)).returncode == 0
    before = rows(workspace)
    requests = len(relay.requests) + len(pds.requests)
    result = workspace.cli("reparse", "--source", "bluesky")
    assert result.returncode == 0, result.stderr
    assert rows(workspace) == before
    assert len(relay.requests) + len(pds.requests) == requests  # nothing fetched
    assert attempts(workspace)[key(pds.url)][:2] == ("ok", None)
