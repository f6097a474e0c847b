"""`tumblr`: posts per day under chosen tags, and post counts of chosen blogs (API v2).

Tags: `/v2/tagged` is walked backwards from today's 00:00 UTC with `before`, 20
posts a call, until the walk passes the start of the oldest day still wanted
(the `days` window on the first run, then only days after the newest stored
one), the tag runs out of posts, or `max_pages` is reached. Blogs: one
`/v2/blog/{blog}/info` call each.

The API key travels in the query string (Tumblr takes it nowhere else). It is
passed as a secret parameter, so the fetch log's URL never holds it; a body that
echoes it back (plain or URL-encoded) is scrubbed here before the runner archives
it, on top of the session's own scrubbing; and httpx/httpcore debug logs are
filtered, since they print request URLs and response headers.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import ClassVar
from urllib.parse import quote, urlsplit

from pydantic import Field, field_validator

from tracker.collectors.base import Collector
from tracker.config import CollectorSettings, HttpSettings, HttpUrl
from tracker.http.redaction import redact_bytes, redact_http_logs
from tracker.http.session import TargetSession
from tracker.model import Fetched, Parsed, PlatformLook, SourceFacts, utc
from tracker.parsers import tumblr as p
from tracker.storage.history import History
from tracker.targets import Target

KEY_ENV = "TUMBLR_API_KEY"
_BLOG_IDENTIFIER = re.compile(r"^[A-Za-z0-9_.:-]{1,255}$")
_LOOPBACK_NAMES = frozenset({"localhost"})


class TumblrSettings(CollectorSettings):
    api: HttpUrl = "https://api.tumblr.com"
    tags: list[str] = Field(default_factory=list)
    blogs: list[str] = Field(default_factory=list)
    days: int = Field(30, ge=1, le=365)
    """Days of tag history the first run backfills; later runs fetch only the missing days."""
    max_pages: int = Field(50, ge=1, le=1000)
    """Calls of `/v2/tagged` (20 posts each) per tag per run: a popular tag stays bounded."""

    @field_validator("api")
    @classmethod
    def _key_never_in_clear(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme == "https" or _is_loopback(parts.hostname or ""):
            return value
        raise ValueError("must be https:// (the API key is sent in the query string)")

    @field_validator("tags")
    @classmethod
    def _tags_are_words(cls, value: list[str]) -> list[str]:
        tags: list[str] = []
        for index, text in enumerate(value):
            tag = text.strip()
            if not tag or len(tag) > 140:
                raise ValueError(f"item {index}: a tag is 1 to 140 characters")
            if tag not in tags:
                tags.append(tag)
        return tags

    @field_validator("blogs")
    @classmethod
    def _blogs_are_identifiers(cls, value: list[str]) -> list[str]:
        blogs: list[str] = []
        for index, text in enumerate(value):
            blog = text.strip()
            if not _BLOG_IDENTIFIER.match(blog):
                raise ValueError(
                    f"item {index}: {blog!r} is not a blog name, host name or t: identifier"
                )
            if blog.lower() not in {known.lower() for known in blogs}:
                blogs.append(blog)
        return blogs


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class TumblrCollector(Collector[TumblrSettings]):
    name = "tumblr"
    settings_model = TumblrSettings
    summary = "posts per day under chosen tags, and the post count of chosen blogs"
    metrics = ("tagged_posts", "posts_total")
    default_schedule = "40 0 * * *"
    """Soon after midnight UTC, when yesterday's posts are all there."""
    about = SourceFacts(caption="Tumblr API")
    platforms: ClassVar[Mapping[str, PlatformLook]] = {"tumblr": PlatformLook("Tumblr", "#17a2b8")}

    def __init__(self, settings: TumblrSettings, http: HttpSettings) -> None:
        super().__init__(settings, http)
        redact_http_logs(self.secrets())

    @property
    def api_key(self) -> str:
        return os.environ.get(KEY_ENV, "").strip()

    def unavailable(self) -> str | None:
        if self.api_key:
            return None
        return (
            f"{KEY_ENV} not set: register an app at https://www.tumblr.com/oauth/apps "
            f"and export its OAuth consumer key as {KEY_ENV}"
        )

    def secrets(self) -> tuple[str, ...]:
        return (self.api_key,) if self.api_key else ()

    def targets(self, history: History) -> Sequence[Target]:
        api = self.settings.api
        return [Target(p.tag_target(tag), api) for tag in self.settings.tags] + [
            Target(p.blog_target(blog), api) for blog in self.settings.blogs
        ]

    async def fetch(self, target: Target, session: TargetSession, history: History) -> None:
        if target.key.startswith("tag:"):
            await self._walk_tag(target.key.removeprefix("tag:"), target.key, session, history)
            return
        spelled = {p.blog_target(blog): blog for blog in self.settings.blogs}
        # The request keeps the configured spelling: `t:` identifiers are case-sensitive.
        blog = quote(spelled[target.key], safe=":")
        await self._get(session, p.BLOG_INFO, f"/v2/blog/{blog}/info")

    def parse(self, target: str, records: Sequence[Fetched], observed_at: datetime) -> Parsed:
        settings = self.settings
        return p.parse(
            target, records, observed_at, days=settings.days, max_pages=settings.max_pages
        )

    def first_wanted_day(self, key: str, today: date, history: History) -> date:
        """The oldest day this run should cover: the window's start, or after the newest stored.

        After a failed attempt the whole window is walked again, because a walk cut
        short (deadline, 429) stored only its newest days and left older ones out.
        """
        first = today - timedelta(days=self.settings.days)
        last = history.last_attempt(self.name, key)
        if last is not None and last.outcome == "failed":
            return first
        latest = history.latest_observed(self.name, key, "tagged_posts", "day")
        if latest is not None:
            first = max(first, utc(latest).date() + timedelta(days=1))
        return first

    async def _walk_tag(self, tag: str, key: str, session: TargetSession, history: History) -> None:
        today = utc(session.context.clock()).date()
        first = self.first_wanted_day(key, today, history)
        if first >= today:
            return  # every complete day is stored; parse reports `not_due`
        stop_below = p.epoch(first)
        cursor = p.epoch(today)  # today is incomplete: never asked for
        oldest: int | None = None
        for _ in range(self.settings.max_pages):
            fetched = await self._get(
                session,
                p.TAGGED,
                "/v2/tagged",
                {"tag": tag, "before": cursor, "limit": p.PAGE_SIZE},
            )
            try:
                page = p.read_page(fetched)
            except p.TumblrError:
                return
            page_oldest = page.oldest
            if page.featured or page_oldest is None:
                return  # featured feed, no more posts, or nothing usable: parse says which
            if oldest is None or page_oldest < oldest:
                oldest = page_oldest
                cursor = oldest + 1  # overlap a second: posts sharing it are not skipped
            elif cursor == oldest + 1:
                cursor = oldest  # a page of one second only: step past that second
            else:
                return  # the server ignores `before`: asking again would loop
            if oldest < stop_below:
                return

    async def _get(
        self,
        session: TargetSession,
        kind: str,
        path: str,
        params: dict[str, str | int] | None = None,
    ) -> Fetched:
        fetched = await session.fetch(
            kind, path, params=params, secret_params={"api_key": self.api_key}
        )
        scrubbed = self._scrub(fetched)
        if scrubbed is not fetched:
            records = session.records
            for index in range(len(records) - 1, -1, -1):
                if records[index] is fetched:
                    records[index] = scrubbed  # before the runner archives the log
                    break
        return scrubbed

    def _scrub(self, fetched: Fetched) -> Fetched:
        """The record with the key cut out of its body (a server may echo its query back)."""
        body = fetched.body
        if not body:
            return fetched
        cleaned = redact_bytes(body, self.secrets())
        return fetched if cleaned == body else replace(fetched, body=cleaned)
