"""`joinmastodon`: the official network-wide Mastodon series (servers, accounts, monthly actives).

One request per run; every run upserts the whole window the endpoint returns, so
the first run backfills years and later runs correct revised days in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tracker.collectors.base import Collector
from tracker.config import CollectorSettings, HttpUrl
from tracker.http.session import TargetSession
from tracker.model import Fetched, Parsed, SourceFacts
from tracker.parsers.joinmastodon import KIND, TARGET, parse
from tracker.storage.history import History
from tracker.targets import Target


class JoinMastodonSettings(CollectorSettings):
    url: HttpUrl = "https://api.joinmastodon.org/statistics"


class JoinMastodonCollector(Collector[JoinMastodonSettings]):
    name = "joinmastodon"
    settings_model = JoinMastodonSettings
    summary = "the official daily count of Mastodon servers, accounts and monthly active users"
    metrics = ("servers_total", "users_total", "users_active_month")
    default_schedule = "10 0 * * *"
    """Soon after midnight UTC, when yesterday's figures are complete."""
    about = SourceFacts(
        caption="official statistics of joinmastodon.org",
        brief="official statistics",
        sentence="joinmastodon.org's official daily statistics",
        record="the official record",
    )

    def targets(self, history: History) -> Sequence[Target]:
        return [Target(key=TARGET, base_url=self.settings.url)]

    async def fetch(self, target: Target, session: TargetSession, history: History) -> None:
        await session.fetch(KIND, self.settings.url)

    def parse(self, target: str, records: Sequence[Fetched], observed_at: datetime) -> Parsed:
        return parse(target, records, observed_at)
