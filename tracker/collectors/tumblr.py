"""`tumblr`: posts per day under chosen tags, and post counts of chosen blogs (API v2).

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


class TumblrSettings(CollectorSettings):
    api: HttpUrl = "https://api.tumblr.com"
    tags: list[str] = Field(default_factory=list)
    blogs: list[str] = Field(default_factory=list)
    days: int = Field(30, ge=1, le=365)


class TumblrCollector(Collector[TumblrSettings]):
    name = "tumblr"
    settings_model = TumblrSettings
    summary = "posts per day under chosen tags, and the post count of chosen blogs"
    metrics = ("tagged_posts", "posts_total")

    def targets(self, history: History) -> Sequence[Target]:
        return []

    async def fetch(self, target: Target, session: TargetSession, history: History) -> None:
        raise NotImplementedError

    def parse(self, target: str, records: Sequence[Fetched], observed_at: datetime) -> Parsed:
        return Parsed(failure=Failure("internal", "not implemented yet"))
