"""`bluesky`: accounts on the AT Protocol network, from relays and from PDS servers.

(Skeleton: the collector is being written; settings keys are the contract.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import Field

from tracker.collectors.base import Collector
from tracker.config import CollectorSettings, HttpUrl
from tracker.http.session import TargetSession
from tracker.model import Failure, Fetched, Parsed
from tracker.storage.history import History
from tracker.targets import Target


class BlueskySettings(CollectorSettings):
    relays: list[HttpUrl] = Field(default_factory=lambda: ["https://bsky.network"])
    pds: list[HttpUrl] = Field(default_factory=list)


class BlueskyCollector(Collector[BlueskySettings]):
    name = "bluesky"
    settings_model = BlueskySettings
    summary = "accounts per PDS host from relays, and all/active accounts of listed PDS servers"
    metrics = ("users_total", "users_active")

    def targets(self, history: History) -> Sequence[Target]:
        return []

    async def fetch(self, target: Target, session: TargetSession, history: History) -> None:
        raise NotImplementedError

    def parse(self, target: str, records: Sequence[Fetched], observed_at: datetime) -> Parsed:
        return Parsed(failure=Failure("internal", "not implemented yet"))
