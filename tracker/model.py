"""The values that pass between the layers: fetched responses, observations, outcomes.

Fetching produces `Fetched` records, a pure parser turns them into `Parsed`, and
storage writes both. Keeping these plain (no I/O, no SQLAlchemy) is what lets a
parser be tested on a payload file and lets `tracker reparse` replay the archive.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tracker.sanity import Rejection

Period = Literal["", "day", "week"]
Outcome = Literal["ok", "failed", "skipped"]


def utc(dt: datetime) -> datetime:
    """Aware UTC, truncated to the second: the resolution every table stores."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Observation:
    """One number about one target.

    `period` is '' for a reading at an instant, or 'day'/'week' for a value that
    covers the period starting at `observed_at`. `replace=False` marks a value
    that may fill a gap but must not overwrite a better one already stored
    (see the Mastodon activity buckets). `platform_known=False` marks a platform
    the parser guessed (a fediverse server read through the Mastodon API because
    its NodeInfo failed): it may name a new series, never rename an existing one.
    """

    platform: str
    target: str
    metric: str
    value: int
    observed_at: datetime
    period: Period = ""
    replace: bool = True
    platform_known: bool = True


@dataclass(frozen=True)
class Failure:
    """Why a target gave no usable data: a short machine kind and a human detail."""

    kind: str
    detail: str


SKIP_KINDS = frozenset({"robots", "not_due"})
"""Failure kinds that mean "deliberately not collected" rather than "broken"."""


def outcome_for(failure: Failure | None) -> Outcome:
    if failure is None:
        return "ok"
    return "skipped" if failure.kind in SKIP_KINDS else "failed"


@dataclass(frozen=True)
class Fetched:
    """One HTTP exchange as it is logged and archived (URL already stripped of secrets)."""

    kind: str
    url: str
    fetched_at: datetime
    method: str = "GET"
    status: int | None = None
    error_kind: str | None = None
    error_detail: str | None = None
    body: bytes | None = None
    content_type: str | None = None
    elapsed_ms: int = 0
    attempts: int = 1
    final_url: str | None = None
    """Where the answer came from when redirects were followed (secrets removed)."""
    moved_to: str | None = None
    """`host[:port]` that permanent redirects (301/308 only) led to, off this host.
    Not stored: the crawl reads it at once to mark the server `moved`."""

    @property
    def ok(self) -> bool:
        return self.error_kind is None and self.status is not None and 200 <= self.status < 300


class PayloadError(ValueError):
    """A body that is not the JSON we asked for; `kind` goes into the fetch log."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def decode_json(fetched: Fetched) -> Any:
    """The JSON body, whatever the Content-Type says (servers send JSON as text/plain)."""
    body = fetched.body or b""
    text = body.lstrip()[:64].lower()
    if not text:
        raise PayloadError("empty_body", "the response body is empty")
    if text.startswith((b"<!doctype", b"<html", b"<?xml", b"<")):
        raise PayloadError("not_json", "HTML or XML where JSON was expected")
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise PayloadError("not_json", "the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        if exc.pos >= len(body.rstrip()) - 1:
            raise PayloadError("bad_json", f"truncated JSON ({exc.msg})") from None
        raise PayloadError("bad_json", f"invalid JSON at byte {exc.pos} ({exc.msg})") from None


@dataclass
class Parsed:
    """What a parser made of one target's responses."""

    observations: list[Observation] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    platform: str | None = None
    software: str | None = None
    version: str | None = None
    failure: Failure | None = None
    platform_known: bool = True
    """False when `platform` is a guess (see `Observation.platform_known`)."""


@dataclass
class TargetResult:
    """Everything one target's collection produced, written in one transaction."""

    source: str
    target: str
    outcome: Outcome
    started_at: datetime
    fetched: Sequence[Fetched] = ()
    parsed: Parsed = field(default_factory=Parsed)
    failure: Failure | None = None

    @property
    def observations(self) -> Iterable[Observation]:
        return self.parsed.observations


class Event(BaseModel):
    """A dated event whose effect the analysis measures and the charts mark.

    A domain value (charts, analysis and the report take it), validated like a
    config section: `events:` in config.yaml is a list of these."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    date: dt.date
    label: str = Field(min_length=1, max_length=80)


DEFAULT_EVENTS = (
    Event(date=dt.date(2022, 10, 27), label="Musk takes over Twitter"),
    Event(date=dt.date(2022, 11, 9), label="Paid verification (Twitter Blue) launches"),
    Event(date=dt.date(2022, 12, 12), label="Twitter Blue relaunches"),
    Event(date=dt.date(2023, 7, 1), label="Rate limits on reading"),
    Event(date=dt.date(2023, 7, 5), label="Threads launches"),
    Event(date=dt.date(2023, 7, 23), label="Twitter rebrands as X"),
    Event(date=dt.date(2024, 2, 6), label="Bluesky opens without invites"),
    Event(date=dt.date(2024, 8, 30), label="X banned in Brazil"),
    Event(date=dt.date(2024, 11, 5), label="US election"),
)
"""Used when the config has no `events:`; config.yaml lists the same with their sources."""


@dataclass(frozen=True)
class SourceFacts:
    """How the charts and the page name one source, owned by what writes the source.

    A collector (or an imported archive) declares these beside its code, so adding
    a platform means no edit to the charts or the report: they read them from
    `tracker.catalogue`.
    """

    caption: str
    """Chart captions: what the source counts and where from."""
    brief: str | None = None
    """A few words for panel titles; None leaves the title with the source's name alone."""
    sentence: str | None = None
    """The headline's words for the source ("joinmastodon.org's official daily statistics")."""
    record: str | None = None
    """The headline's words for its whole series ("the official record")."""
    unit: str = "targets"
    """What one of its targets is, in coverage notes ("servers", "hosts", "articles")."""


@dataclass(frozen=True)
class PlatformLook:
    """A platform's display name and chart colour, declared by the collector that reports it."""

    name: str
    colour: str | None = None
    """None: a stable colour from the fallback palette (`tracker.charts.style`)."""
