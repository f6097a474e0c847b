"""The one place that asks what time it is, so tests and backfills can inject it."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]

NOW_ENV = "TRACKER_NOW"
"""An ISO 8601 instant that replaces the system clock (for tests and reproducible demos)."""


def system_clock() -> datetime:
    return datetime.now(UTC)


def clock_from_env() -> Clock:
    """The system clock, or a fixed instant when `$TRACKER_NOW` is set."""
    fixed = os.environ.get(NOW_ENV)
    if not fixed:
        return system_clock
    instant = datetime.fromisoformat(fixed.replace("Z", "+00:00"))
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return lambda: instant
