"""The one place that lists the collectors. Adding a platform = one module + one line here.

The order is the order `tracker collect` runs them in and the order the charts draw
their sources in (the official Mastodon figures first, as the reference line).
"""

from __future__ import annotations

from typing import Any

from tracker.collectors.base import Collector
from tracker.collectors.bluesky import BlueskyCollector
from tracker.collectors.fediverse import FediverseCollector
from tracker.collectors.joinmastodon import JoinMastodonCollector
from tracker.collectors.plc import PlcCollector
from tracker.collectors.tumblr import TumblrCollector
from tracker.collectors.wikipedia import WikipediaCollector

COLLECTORS: tuple[type[Collector[Any]], ...] = (
    JoinMastodonCollector,
    FediverseCollector,
    BlueskyCollector,
    TumblrCollector,
    WikipediaCollector,
    PlcCollector,
)


def names() -> list[str]:
    return [collector.name for collector in COLLECTORS]


def get(name: str) -> type[Collector[Any]]:
    for collector in COLLECTORS:
        if collector.name == name:
            return collector
    raise KeyError(f"unknown collector {name!r} (known: {', '.join(names())})")


def default_schedules() -> dict[str, str]:
    """Each collector's own default timetable (cron, UTC); `schedule:` entries override it."""
    return {c.name: c.default_schedule for c in COLLECTORS if c.default_schedule is not None}
