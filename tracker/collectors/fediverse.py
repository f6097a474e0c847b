"""`fediverse`: Mastodon, Misskey, Lemmy and every NodeInfo server, one instance at a time.

Order of requests per instance: robots.txt (obeyed), `/.well-known/nodeinfo`, the
newest NodeInfo document it links, then the software's own statistics API.
A server without NodeInfo is still tried as Mastodon (`/api/v1/instance`), since
some Mastodon forks switch NodeInfo off but keep the instance API.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import Field

from tracker.collectors.base import Collector
from tracker.config import CollectorSettings, ServerList
from tracker.http.session import TargetSession
from tracker.model import Fetched, Parsed, PayloadError, decode_json
from tracker.parsers import fediverse as p
from tracker.storage.history import History
from tracker.targets import Target, unique_targets


class FediverseSettings(CollectorSettings):
    instances: ServerList = Field(default_factory=list)
    peers: bool = True
    """Fetch `/api/v1/instance/peers` (megabytes on the largest servers) for `peers_total`."""


class FediverseCollector(Collector[FediverseSettings]):
    name = "fediverse"
    settings_model = FediverseSettings
    respect_robots = True
    summary = "accounts, active users, posts and weekly sign-ups of each listed fediverse server"
    metrics = (
        "users_total",
        "users_active_month",
        "users_active_halfyear",
        "users_active_week",
        "users_active_day",
        "posts_total",
        "comments_total",
        "peers_total",
        "registrations_open",
        "registrations",
        "logins",
        "statuses",
    )

    def targets(self, history: History) -> Sequence[Target]:
        return unique_targets(self.settings.instances)

    async def fetch(self, target: Target, session: TargetSession, history: History) -> None:
        links = await session.fetch(p.WELLKNOWN, "/.well-known/nodeinfo")
        if links.status is None:
            return  # no HTTP answer at all (dead, robots, deadline): nothing else will work
        software = await self._nodeinfo_software(links, session)
        family = p.platform_of(software) if software else None
        if family == "misskey":
            await session.fetch(
                p.MISSKEY_STATS, "/api/stats", method="POST", json_body={}, optional=True
            )
        elif family == "lemmy":
            await session.fetch(p.LEMMY_SITE, "/api/v3/site", optional=True)
        elif family == "mastodon" or software is None:
            await self._mastodon(session, known=software is not None)

    async def _nodeinfo_software(self, links: Fetched, session: TargetSession) -> str | None:
        if not links.ok:
            return None
        try:
            href = p.pick_nodeinfo_href(decode_json(links))
        except PayloadError:
            return None
        if href is None:
            return None
        document = await session.fetch(p.NODEINFO, href)
        if not document.ok:
            return None
        try:
            software, _ = p.read_nodeinfo(decode_json(document), p.Counts())
        except PayloadError:
            return None
        return software

    async def _mastodon(self, session: TargetSession, *, known: bool) -> None:
        v2 = await session.fetch(p.INSTANCE_V2, "/api/v2/instance", optional=True)
        if not v2.ok or not known:
            # v1 is the fallback before Mastodon 4, and the only API with account
            # totals when NodeInfo is switched off.
            v1 = await session.fetch(p.INSTANCE_V1, "/api/v1/instance", optional=True)
            if not known and not (v1.ok or v2.ok):
                return
        await session.fetch(p.ACTIVITY, "/api/v1/instance/activity", optional=True)
        if self.settings.peers:
            await session.fetch(p.PEERS, "/api/v1/instance/peers", optional=True)

    def parse(self, target: str, records: Sequence[Fetched], observed_at: datetime) -> Parsed:
        return p.parse_fediverse(target, records, observed_at)
