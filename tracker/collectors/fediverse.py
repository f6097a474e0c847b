"""`fediverse`: Mastodon, Misskey, Lemmy and every NodeInfo server, one instance at a time.

Order of requests per instance: robots.txt (obeyed), `/.well-known/nodeinfo`, the
newest NodeInfo document it links, then the software's own statistics API.
A server without NodeInfo is still tried as Mastodon (`/api/v1/instance`), since
some Mastodon forks switch NodeInfo off but keep the instance API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import ClassVar

from pydantic import Field

from tracker.collectors.base import Collector
from tracker.config import CollectorSettings, DiscoverSettings, ServerList
from tracker.http.session import TargetSession
from tracker.model import Fetched, Parsed, PayloadError, PlatformLook, SourceFacts, decode_json
from tracker.parsers import fediverse as p
from tracker.storage.history import History
from tracker.targets import Target, target_for, unique_targets

MISSKEY_PAGE = p.MISSKEY_PAGE
MISSKEY_MAX_PAGES = 1000
"""100,000 peers: bounds what one server can make the crawl ask."""


class FediverseSettings(CollectorSettings):
    instances: ServerList = Field(default_factory=list)
    peers: bool = True
    """Fetch `/api/v1/instance/peers` (megabytes on the largest servers) for `peers_total`."""
    discover: DiscoverSettings | None = None
    """The crawl (`tracker crawl`, docs/crawl.md): absent, only `instances` are measured."""


FOUND_INTERVAL = timedelta(hours=23)
"""`measure_found: daily`: a server only the crawl found is measured again by `collect`
once no run (crawl or collect) measured it for this long. 23 hours, not 24, so a
daily crawl a few minutes late still counts as that day's reading."""


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
    default_schedule = "0 */6 * * *"
    about = SourceFacts(
        caption="servers listed in the config or found by `tracker crawl`, read from their "
        "public APIs",
        brief="listed or crawled servers",
        unit="servers",
    )
    platforms: ClassVar[Mapping[str, PlatformLook]] = {
        "mastodon": PlatformLook("Mastodon", "#563acc"),
        "misskey": PlatformLook("Misskey", "#86b300"),
        "lemmy": PlatformLook("Lemmy", "#14854f"),
        "pleroma": PlatformLook("Pleroma", "#d35400"),
        "akkoma": PlatformLook("Akkoma", "#b185db"),
        "gotosocial": PlatformLook("GoToSocial", "#7f8c8d"),
        "peertube": PlatformLook("PeerTube", "#f1680d"),
        "friendica": PlatformLook("friendica", "#1872a2"),
        "firefish": PlatformLook("firefish", "#f07a5b"),
        "sharkey": PlatformLook("sharkey", "#4fb3a1"),
    }

    crawl_mode: bool = False
    """Set by the crawl: NodeInfo and the whole peer list, not the per-server extras."""

    def targets(self, history: History) -> Sequence[Target]:
        targets = unique_targets(self.settings.instances)
        if self.settings.discover is not None:
            # The known alive servers are measured too (their peers are not followed).
            skip = {target.key for target in targets}
            if self.settings.discover.measure_found == "daily":
                skip |= history.measured_within(self.name, FOUND_INTERVAL)
            allow = self.http.allow_hosts
            targets += [
                target_for(host, allow)
                for host in history.servers_in_state("alive")
                if host not in skip
            ]
        return targets

    async def fetch(self, target: Target, session: TargetSession, history: History) -> None:
        links = await session.fetch(p.WELLKNOWN, "/.well-known/nodeinfo")
        if links.status is None or links.status == 410:
            return  # no HTTP answer (dead, robots, deadline), or gone on purpose
        software, stop = await self._nodeinfo_software(links, session)
        if stop:
            return  # 410 or a privacy flag on NodeInfo: the admin opted out
        family = p.platform_of(software) if software else None
        if self.crawl_mode:
            await self._crawl_extras(session, family)
        elif family == "misskey":
            await session.fetch(
                p.MISSKEY_STATS, "/api/stats", method="POST", json_body={}, optional=True
            )
        elif family == "lemmy":
            await session.fetch(p.LEMMY_SITE, "/api/v3/site", optional=True)
        elif family == "mastodon" or software is None:
            await self._mastodon(session, known=software is not None)

    async def _nodeinfo_software(
        self, links: Fetched, session: TargetSession
    ) -> tuple[str | None, bool]:
        """The software NodeInfo names, and whether to stop here (410, privacy flag)."""
        if not links.ok:
            return None, False
        try:
            href = p.pick_nodeinfo_href(decode_json(links))
        except PayloadError:
            return None, False
        if href is None:
            return None, False
        document = await session.fetch(p.NODEINFO, href)
        if document.status == 410:
            return None, True
        if not document.ok:
            return None, False
        try:
            body = decode_json(document)
            software, _ = p.read_nodeinfo(body, p.Counts())
        except PayloadError:
            return None, False
        return software, p.privacy_opt_out(body) is not None

    async def _crawl_extras(self, session: TargetSession, family: str | None) -> None:
        """A crawled server: its peer list in its own software's shape (docs/crawl.md)."""
        if family is None:  # NodeInfo off: maybe Mastodon with the instance API on
            v1 = await session.fetch(p.INSTANCE_V1, "/api/v1/instance", optional=True)
            if not v1.ok:
                return
            family = "mastodon"
        if family in p.MASTODON_PEERS_FAMILIES:
            await session.fetch(p.PEERS, "/api/v1/instance/peers", optional=True)
        elif family == "misskey":
            await self._misskey_instances(session)
        elif family == "lemmy":
            await session.fetch(p.LEMMY_INSTANCES, "/api/v3/federated_instances", optional=True)

    async def _misskey_instances(self, session: TargetSession) -> None:
        """`POST /api/federation/instances` a page of 100 at a time, to the end."""
        for page in range(MISSKEY_MAX_PAGES):
            body = {"limit": MISSKEY_PAGE, "offset": page * MISSKEY_PAGE}
            fetched = await session.fetch(
                p.MISSKEY_INSTANCES,
                "/api/federation/instances",
                method="POST",
                json_body=body,
                optional=True,
            )
            try:
                items = decode_json(fetched) if fetched.ok else None
            except PayloadError:
                return
            if not isinstance(items, list) or len(items) < MISSKEY_PAGE:
                return

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
        return p.parse(target, records, observed_at)
