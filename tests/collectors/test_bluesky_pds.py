"""The collector against a real `@atproto/pds` (with a local PLC directory) on 127.0.0.1.

Accounts are made through the PDS's own `createAccount` (invite codes required,
so `registrations_open` must read 0), one is deactivated, and `tracker collect`
runs as a user would run it. The expected counts are the accounts this test
made, not anything the collector computed. The Node servers come from
`make node-deps`; without them this test fails and says so (it never skips).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.support.bluesky.harness import Account, PdsServers, ServersUnavailable, start_pds
from tests.support.sites import iso

NOW = datetime(2024, 11, 20, 12, 0, tzinfo=UTC)
NAMES = ("alice", "bob", "carol", "dave")


@dataclass
class RealPds:
    servers: PdsServers
    accounts: list[Account]
    deactivated: list[Account]

    @property
    def key(self) -> str:
        return self.servers.url.removeprefix("http://")


@pytest.fixture(scope="module")
def real_pds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealPds]:
    problem = None
    try:
        servers = start_pds(Path(tmp_path_factory.mktemp("pds")), invite_required=True)
    except ServersUnavailable as exc:
        problem = str(exc)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    try:
        code = servers.create_invite_code(uses=len(NAMES))
        accounts = [servers.create_account(name, code) for name in NAMES]
        servers.deactivate(accounts[1])
        yield RealPds(servers, accounts, [accounts[1]])
    finally:
        servers.stop()


def collect(workspace: Workspace, **bluesky: object) -> None:
    workspace.write_config({"collectors": {"bluesky": bluesky}})
    result = workspace.run("collect", TRACKER_NOW=iso(NOW))
    assert result.returncode == 0, result.stderr


def exported(workspace: Workspace, target: str) -> dict[str, str]:
    rows = [row for row in workspace.export() if row["target"] == target]
    assert all(row["source"] == "bluesky" and row["platform"] == "bluesky" for row in rows)
    return {row["metric"]: row["value"] for row in rows}


def test_collect_counts_the_accounts_the_pds_holds(real_pds: RealPds, workspace: Workspace) -> None:
    collect(workspace, relays=[], pds=[real_pds.servers.url])
    created, deactivated = len(real_pds.accounts), len(real_pds.deactivated)
    assert exported(workspace, real_pds.key) == {
        "users_total": str(created),
        "users_active": str(created - deactivated),
        "registrations_open": "0",
    }


def test_small_pages_follow_the_real_cursors(real_pds: RealPds, workspace: Workspace) -> None:
    collect(workspace, relays=[], pds=[real_pds.servers.url], page_size=1)
    created, deactivated = len(real_pds.accounts), len(real_pds.deactivated)
    values = exported(workspace, real_pds.key)
    assert values["users_total"] == str(created)
    assert values["users_active"] == str(created - deactivated)
    with sqlite3.connect(workspace.db) as db:
        urls = [u for (u,) in db.execute("SELECT url FROM fetches WHERE kind = 'listRepos'")]
    # One page per account, then the page past the end; each later page sends a cursor.
    assert len(urls) == created + 1
    assert all("cursor=" in url for url in urls[1:]) and "cursor=" not in urls[0]


def test_the_pds_is_not_a_relay(real_pds: RealPds, workspace: Workspace) -> None:
    collect(workspace, relays=[real_pds.servers.url], pds=[])
    with sqlite3.connect(workspace.db) as db:
        [(outcome, kind, detail)] = db.execute(
            "SELECT outcome, error_kind, error_detail FROM attempts"
        ).fetchall()
    assert (outcome, kind) == ("failed", "not_implemented"), detail
    assert "com.atproto.sync.listHosts" in detail
    assert workspace.export() == []
