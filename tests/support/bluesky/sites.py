"""Simulated relays and PDSes for the loopback tests, in the real payload shapes.

They page the way the real servers do (see tests/fixtures/README.md): a
relay's cursor is a number, a PDS's is `<createdAt ms>::<did>`, every non-empty
page carries a cursor (a full last page too), and the page after the last is
empty with no cursor. Pages are `page_size` long whatever `limit` asks, so a
handful of accounts spans several pages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support import payloads as pl
from tests.support.loopback import Reply, Request, Routes

LIST_HOSTS = "/xrpc/com.atproto.sync.listHosts"
LIST_REPOS = "/xrpc/com.atproto.sync.listRepos"
DESCRIBE = "/xrpc/com.atproto.server.describeServer"


def host(hostname: Any, count: Any, status: Any = "active", **extra: Any) -> dict[str, Any]:
    """One `listHosts` entry, keyed like the fixture payload (optional keys left out if None)."""
    entry: dict[str, Any] = {"hostname": hostname, "seq": 1000}
    if count is not None:
        entry["accountCount"] = count
    if status is not None:
        entry["status"] = status
    entry.update(extra)
    return entry


def repo(number: int, status: str | None = None) -> dict[str, Any]:
    """One `listRepos` entry in the PDS shape; `status` set means inactive."""
    template = pl.payload("bluesky/listRepos_pds.json")["repos"][0]
    entry = dict(template)
    entry["did"] = f"did:plc:test{number:020d}"
    entry["active"] = status is None
    if status is not None:
        entry["status"] = status
    return entry


def paged(
    items_key: str, items: list[Any], page_size: int, cursor_of: Callable[[int], str]
) -> Callable[[Request], Reply]:
    """A handler serving `items` in pages; the cursor names the last item served."""
    positions = {cursor_of(index): index + 1 for index in range(len(items))}

    def handle(request: Request) -> Reply:
        cursor = request.param("cursor")
        if cursor is not None and cursor not in positions:
            return Reply(400, {"error": "InvalidRequest", "message": "malformed cursor"})
        start = 0 if cursor is None else positions[cursor]
        page = items[start : start + page_size]
        body: dict[str, Any] = {items_key: page}
        if page:
            body = {"cursor": cursor_of(start + len(page) - 1), **body}
        return Reply(body=body)

    return handle


@dataclass
class RelaySpec:
    hosts: list[dict[str, Any]] = field(
        default_factory=lambda: list(pl.payload("bluesky/listHosts_relay.json")["hosts"])
    )
    page_size: int = 2

    def routes(self) -> Routes:
        return {
            f"GET {LIST_HOSTS}": paged("hosts", self.hosts, self.page_size, lambda i: str(200 + i))
        }


@dataclass
class PdsSpec:
    active: int = 5
    inactive: tuple[str, ...] = ("deactivated", "takendown")
    invite_required: bool = True
    page_size: int = 3

    @property
    def repos(self) -> list[dict[str, Any]]:
        statuses: list[str | None] = [None] * self.active
        for index, status in enumerate(self.inactive):  # spread over the pages
            statuses.insert(min(len(statuses), 1 + 3 * index), status)
        return [repo(number, status) for number, status in enumerate(statuses)]

    def describe(self) -> Any:
        document = pl.payload("bluesky/describeServer.json")
        document["inviteCodeRequired"] = self.invite_required
        return document

    def routes(self) -> Routes:
        repos = self.repos
        return {
            f"GET {DESCRIBE}": Reply(body=self.describe()),
            f"GET {LIST_REPOS}": paged(
                "repos",
                repos,
                self.page_size,
                lambda i: f"{1700000000000 + i}::{repos[i]['did']}",
            ),
        }
