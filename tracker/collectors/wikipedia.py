"""`wikipedia`: daily page views of chosen articles, attention where no stats API exists.

One request per article and run to the Wikimedia pageviews API (agent `user`, all
access). The first run backfills from `start`; later runs ask only from two days
before the newest stored day, because the API may still revise recent days (and
once from `start` again if no answered request has reached back that far, as after
moving `start` earlier). Each returned day is one `pageviews` value with period
`day`; the days the API leaves out are 0 views or not loaded yet, which the parser
tells apart (`tracker.parsers.wikipedia`).

A title the API has no data for at all is reported as `no_such_article` and asked
again only after a week (skipped runs in between say when), so a typo in the
config costs one request a week rather than one a run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar

from pydantic import Field, field_validator

from tracker.collectors.base import Collector
from tracker.config import CollectorSettings, HttpSettings, HttpUrl, Strict
from tracker.http.session import TargetSession
from tracker.instants import iso_z
from tracker.model import Fetched, Parsed, PlatformLook, SourceFacts
from tracker.parsers import wikipedia as p
from tracker.storage.history import History
from tracker.targets import Target

DEFAULT_API = "https://wikimedia.org/api/rest_v1"
REVISED_DAYS = 2
"""Days before the newest stored one that are fetched again (the API may revise them)."""
RECHECK_AFTER = timedelta(days=7)
"""How long a title the API did not know is left alone before it is asked again."""
UNKNOWN_PLATFORM = "unknown"
"""Only for `tracker reparse` of an article that is no longer in the config."""


class Article(Strict):
    """One article to follow; `wiki` and `title` are stored in their canonical forms."""

    wiki: str
    title: str
    platform: str

    @field_validator("wiki")
    @classmethod
    def _wiki(cls, value: str) -> str:
        return p.canonical_wiki(value)

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        return p.canonical_title(value)

    @field_validator("platform")
    @classmethod
    def _platform(cls, value: str) -> str:
        name = value.strip().lower()
        if not name or any(char.isspace() for char in name):
            raise ValueError("must be one word naming the platform, like mastodon or mixi")
        return name

    @property
    def key(self) -> str:
        return p.target_key(self.wiki, self.title)


class WikipediaSettings(CollectorSettings):
    api: HttpUrl = DEFAULT_API
    articles: list[Article] = Field(default_factory=list)
    start: date = date(2022, 1, 1)

    @field_validator("start")
    @classmethod
    def _after_first_data(cls, value: date) -> date:
        if value < p.FIRST_DAY:
            raise ValueError(f"the pageviews API has no data before {p.FIRST_DAY}")
        return value

    @field_validator("articles")
    @classmethod
    def _one_platform_per_article(cls, value: list[Article]) -> list[Article]:
        first: dict[str, tuple[int, Article]] = {}
        for index, article in enumerate(value):
            index_before, before = first.setdefault(article.key, (index, article))
            if before.platform != article.platform:
                raise ValueError(
                    f"item {index}: {article.key} is already item {index_before} with "
                    f"platform {before.platform!r}, not {article.platform!r}"
                )
        return value


class WikipediaCollector(Collector[WikipediaSettings]):
    name = "wikipedia"
    settings_model = WikipediaSettings
    summary = "daily page views of chosen Wikipedia articles (attention, not accounts)"
    metrics = (p.METRIC,)
    default_schedule = "30 2 * * *"
    """Wikimedia adds a day's page views some hours after it ends; a day not there yet
    is fetched the next day (the collector asks again from two days back)."""
    about = SourceFacts(caption="Wikimedia page views API", unit="articles")
    platforms: ClassVar[Mapping[str, PlatformLook]] = {
        "twitter": PlatformLook("Twitter/X", "#14171a"),
        "x": PlatformLook("Twitter/X", "#14171a"),
        "threads": PlatformLook("Threads", "#c13584"),
        "mixi": PlatformLook("mixi", "#e8a317"),
        "mixi2": PlatformLook("mixi2", "#9c6b00"),
        "countersocial": PlatformLook("CounterSocial", "#2c3e50"),
        "cohost": PlatformLook("Cohost", "#83254f"),
    }
    """Platforms only their articles measure (no stats API); the others are named by
    the collector that measures them."""

    def __init__(self, settings: WikipediaSettings, http: HttpSettings) -> None:
        super().__init__(settings, http)
        self.articles: dict[str, Article] = {}
        for article in settings.articles:
            self.articles.setdefault(article.key, article)  # duplicates collected once

    def unavailable(self) -> str | None:
        if not self.articles:
            return "collectors.wikipedia.articles is empty: list the articles to follow"
        return None

    def targets(self, history: History) -> Sequence[Target]:
        return [Target(key=key, base_url=self.settings.api) for key in self.articles]

    async def fetch(self, target: Target, session: TargetSession, history: History) -> None:
        article = self.articles[target.key]
        now = session.context.clock()
        yesterday = now.astimezone(UTC).date() - timedelta(days=1)
        newest = history.latest_observed(self.name, target.key, p.METRIC, "day")
        if newest is None:
            first, kind = self.settings.start, p.KIND_BACKFILL
        else:
            newest_day = newest.astimezone(UTC).date()
            first = max(self.settings.start, newest_day - timedelta(days=REVISED_DAYS))
            if self._never_asked_from_start(history, target.key):  # `start` moved earlier
                first = self.settings.start
            kind = p.KIND_UPDATE
        path = p.request_path(article.wiki, article.title, first, yesterday)
        if newest is None:
            wait = self._recheck_wait(history, target.key, now)
            if wait is not None:
                _note_not_due(session, path, now, wait)
                return
        if first > yesterday:
            reason = f"nothing to fetch yet: the first day wanted, {first}, has not ended"
            _note_not_due(session, path, now, reason)
            return
        await session.fetch(kind, path)

    def _never_asked_from_start(self, history: History, key: str) -> bool:
        """No answered request has covered `start` yet (it was moved earlier, or the
        history was imported): then the next request goes back to `start`, once."""
        kinds = (p.KIND_BACKFILL, p.KIND_UPDATE)
        asked = (p.requested_range(url) for url in history.answered_urls(self.name, key, kinds))
        earliest = min((span[0] for span in asked if span is not None), default=None)
        return earliest is None or earliest > self.settings.start

    def _recheck_wait(self, history: History, key: str, now: datetime) -> str | None:
        """Why not to ask now: the API said "no such article" less than a week ago."""
        last = history.last_check(self.name, key, skipping="not_due")
        if last is None or last.error_kind != "no_such_article":
            return None
        due = last.started_at + RECHECK_AFTER
        if now >= due:
            return None
        return (
            f"{last.error_detail or 'no such article'} when asked on "
            f"{iso_z(last.started_at, sep=' ', timespec='minutes')}; "
            f"asked again from {iso_z(due, sep=' ', timespec='minutes')}"
        )

    def parse(self, target: str, records: Sequence[Fetched], observed_at: datetime) -> Parsed:
        article = self.articles.get(target)
        platform = article.platform if article else UNKNOWN_PLATFORM
        return p.parse(target, records, observed_at, platform=platform)


def _note_not_due(session: TargetSession, path: str, now: datetime, reason: str) -> None:
    """Log the skip as a request that was not made: the parser (and reparse) read it there."""
    session.records.append(
        Fetched(
            kind=p.KIND_NOT_DUE,
            url=session.url(path),
            fetched_at=now,
            error_kind="not_due",
            error_detail=reason,
        )
    )
