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
from tracker.model import Failure, Fetched, Parsed, PayloadError, decode_json
from tracker.parsers.common import no_data_failure
from tracker.parsers.joinmastodon import TARGET, parse_statistics
from tracker.storage.history import History
from tracker.targets import Target

KIND = "statistics"


class JoinMastodonSettings(CollectorSettings):
    url: HttpUrl = "https://api.joinmastodon.org/statistics"


class JoinMastodonCollector(Collector[JoinMastodonSettings]):
    name = "joinmastodon"
    settings_model = JoinMastodonSettings
    summary = "the official daily count of Mastodon servers, accounts and monthly active users"
    metrics = ("servers_total", "users_total", "users_active_month")

    def targets(self, history: History) -> Sequence[Target]:
        return [Target(key=TARGET, base_url=self.settings.url)]

    async def fetch(self, target: Target, session: TargetSession, history: History) -> None:
        await session.fetch(KIND, self.settings.url)

    def parse(self, target: str, records: Sequence[Fetched], observed_at: datetime) -> Parsed:
        for record in records:
            if record.kind == KIND and record.ok:
                try:
                    return parse_statistics(decode_json(record), observed_at)
                except PayloadError as exc:
                    return Parsed(failure=Failure(exc.kind, f"{KIND}: {exc.detail}"))
        return Parsed(failure=no_data_failure(records, "the endpoint published no statistics"))
