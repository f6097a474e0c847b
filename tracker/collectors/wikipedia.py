"""`wikipedia`: daily page views of chosen articles, attention where no stats API exists.

(Skeleton: the collector is being written; settings keys are the contract.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from pydantic import Field

from tracker.collectors.base import Collector
from tracker.config import CollectorSettings, HttpUrl, Strict
from tracker.http.session import TargetSession
from tracker.model import Failure, Fetched, Parsed
from tracker.storage.history import History
from tracker.targets import Target


class Article(Strict):
    wiki: str
    title: str
    platform: str


class WikipediaSettings(CollectorSettings):
    api: HttpUrl = "https://wikimedia.org/api/rest_v1"
    articles: list[Article] = Field(default_factory=list)
    start: date = date(2022, 1, 1)


class WikipediaCollector(Collector[WikipediaSettings]):
    name = "wikipedia"
    settings_model = WikipediaSettings
    summary = "daily page views of chosen Wikipedia articles (attention, not accounts)"
    metrics = ("pageviews",)

    def targets(self, history: History) -> Sequence[Target]:
        return []

    async def fetch(self, target: Target, session: TargetSession, history: History) -> None:
        raise NotImplementedError

    def parse(self, target: str, records: Sequence[Fetched], observed_at: datetime) -> Parsed:
        return Parsed(failure=Failure("internal", "not implemented yet"))
