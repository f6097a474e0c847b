"""`bluesky`: accounts on the AT Protocol network, from relays and from PDS servers.

Two kinds of target, each one request chain:
- a relay (`relays`): `com.atproto.sync.listHosts` to the end; every PDS host it
  lists with an `accountCount` becomes a reading under `relay:<relay>/<host>`, and
  the active hosts add up to a network total under `relay:<relay>`;
- a PDS (`pds`): `com.atproto.server.describeServer` (invite codes), then
  `com.atproto.sync.listRepos` to the end, counting every account and the active ones,
  under the PDS's own `host[:port]`.

The two never share a series: a relay's `accountCount` of a host (deactivated
accounts included) and a PDS's own listing are different counts, and one URL may
be configured as both, or be a PDS the relay lists. Attempts keep the configured
key of either role.

No authentication: both are public sync methods. Enumerating a PDS costs one
request per `page_size` accounts, so a large PDS needs a larger `http.deadline`
(a listing cut off stores no count; see tracker/parsers/bluesky.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from pydantic import Field

from tracker.collectors.base import Collector
from tracker.config import CollectorSettings, ServerUrlList
from tracker.http.session import TargetSession
from tracker.model import Fetched, Parsed, PayloadError, PlatformLook, SourceFacts, decode_json
from tracker.parsers import bluesky as p
from tracker.storage.history import History
from tracker.targets import Target, unique_targets


class BlueskySettings(CollectorSettings):
    relays: ServerUrlList = Field(default_factory=lambda: ["https://bsky.network"])
    """Relays asked for their host list (accounts per PDS, and the network total)."""
    pds: ServerUrlList = Field(default_factory=list)
    """PDS servers whose accounts are enumerated one by one (third-party ones included)."""
    page_size: int = Field(1000, ge=1, le=1000)
    """`limit` of each list request; 1000 is the maximum both methods accept."""
    max_pages: int = Field(1000, ge=1, le=100_000)
    """Pages per listing before giving up: bounds the time, memory and archive one
    hostile or huge server can take (1000 pages of 1000 = a million accounts)."""


@dataclass(frozen=True, order=True)
class BlueskyTarget(Target):
    """A target that knows its role: one URL may be listed both as relay and as PDS."""

    role: str = "pds"


class BlueskyCollector(Collector[BlueskySettings]):
    name = "bluesky"
    settings_model = BlueskySettings
    summary = "accounts per PDS host and network total from relays; all/active accounts of PDSes"
    metrics = ("users_total", "users_active", "servers_total", "registrations_open")
    default_schedule = "20 */6 * * *"
    about = SourceFacts(
        caption="Bluesky relays and PDS hosts listed in the config",
        brief="listed relays and hosts",
        sentence="the Bluesky relay's count of accounts on the hosts it lists "
        "(deactivated accounts included)",
        unit="hosts",
    )
    platforms: ClassVar[Mapping[str, PlatformLook]] = {
        "bluesky": PlatformLook("Bluesky", "#1185fe")
    }

    def targets(self, history: History) -> Sequence[Target]:
        relays = unique_targets(list(self.settings.relays))
        servers = unique_targets(list(self.settings.pds))
        return [BlueskyTarget(t.key, t.base_url, "relay") for t in relays] + [
            BlueskyTarget(t.key, t.base_url, "pds") for t in servers
        ]

    async def fetch(self, target: Target, session: TargetSession, history: History) -> None:
        if isinstance(target, BlueskyTarget) and target.role == "relay":
            await self._list_to_the_end(session, p.LIST_HOSTS, p.LIST_HOSTS_PATH)
            return
        describe = await session.fetch(p.DESCRIBE, p.DESCRIBE_PATH, optional=True)
        if describe.status is None:
            return  # no HTTP answer at all (dead, deadline): the listing would fail the same way
        await self._list_to_the_end(session, p.LIST_REPOS, p.LIST_REPOS_PATH)

    async def _list_to_the_end(self, session: TargetSession, kind: str, path: str) -> None:
        """Follow the cursor until the listing ends, fails, repeats itself or hits max_pages.

        Parse decides from the same pages whether the end was reached; this loop
        only decides whether to ask for another page.
        """
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(self.settings.max_pages):
            params: dict[str, str | int] = {"limit": self.settings.page_size}
            if cursor is not None:
                params["cursor"] = cursor
            page = await session.fetch(kind, path, params=params)
            if not page.ok:
                return
            try:
                _, cursor = p.page_step(decode_json(page), p.ITEMS[kind])
            except PayloadError:
                return
            if cursor is None or cursor in seen:
                return
            seen.add(cursor)

    def parse(self, target: str, records: Sequence[Fetched], observed_at: datetime) -> Parsed:
        return p.parse(target, records, observed_at, max_pages=self.settings.max_pages)
