"""The one small interface every platform module implements.

A collector names its targets, fetches each through a `TargetSession` (which logs
and archives every response), and parses the fetch log with a pure function.
Fetching and parsing are separate so `tracker reparse` can run the parser again
on the archive after a fix, without touching the network.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import ClassVar, Generic, TypeVar

from tracker.config import CollectorSettings, HttpSettings
from tracker.http.session import TargetSession
from tracker.model import Fetched, Parsed, PlatformLook, SourceFacts
from tracker.storage.history import History
from tracker.targets import Target

S = TypeVar("S", bound=CollectorSettings)


class Collector(ABC, Generic[S]):
    """One platform. Subclasses set the class attributes and the three methods."""

    name: ClassVar[str]
    """The `source` of every observation it writes, and its key under `collectors:`."""
    settings_model: ClassVar[type[CollectorSettings]]
    metrics: ClassVar[tuple[str, ...]]
    summary: ClassVar[str]
    """One line for `tracker collectors`: what it measures and from where."""
    respect_robots: ClassVar[bool] = False
    """Crawlers of many independent servers obey robots.txt; documented APIs need not."""
    default_schedule: ClassVar[str | None]
    """When `tracker schedule` runs it if `schedule:` does not say (cron, UTC), or None."""
    about: ClassVar[SourceFacts]
    """How the charts and the page describe its source (read through `tracker.catalogue`)."""
    platforms: ClassVar[Mapping[str, PlatformLook]] = {}
    """Display name and colour of the platforms it reports that no other collector names."""

    def __init__(self, settings: S, http: HttpSettings) -> None:
        """`http` is this collector's HTTP settings (`Config.http_for(name)`), global ones
        included, so a collector never reaches into the rest of the config."""
        self.settings = settings
        self.http = http

    def unavailable(self) -> str | None:
        """Why the collector cannot run now (for example a missing API key), or None."""
        return None

    def secrets(self) -> tuple[str, ...]:
        """Values that must never reach a log, the fetch log or the database."""
        return ()

    @abstractmethod
    def targets(self, history: History) -> Sequence[Target]:
        """What to poll in this run. `history` is what earlier runs stored: the fediverse
        collector adds the servers the crawl found alive and not measured today."""

    @abstractmethod
    async def fetch(self, target: Target, session: TargetSession, history: History) -> None:
        """Make this target's requests; every response lands in `session.records`."""

    @abstractmethod
    def parse(self, target: str, records: Sequence[Fetched], observed_at: datetime) -> Parsed:
        """Pure: the fetch log of one target into observations (also used by reparse).

        Calls its parser module's `parse(target, records, observed_at, *, options)`, the
        one parser contract (tests/collectors/test_registry.py), with options from its
        settings."""
