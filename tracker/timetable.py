"""Parsing a `schedule:` entry: `every <n><s|m|h|d>` or a 5-field cron expression (UTC).

A low module on its own (APScheduler's triggers, no tracker module), so the config
models can check an entry when the file is read and `tracker schedule` can use the
same parse to run it: a typo fails at start, not silently at the first missed slot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

INTERVAL_ANCHOR = datetime(2000, 1, 1, tzinfo=UTC)
"""`every 6h` fires at 00:00, 06:00... UTC, the same slots after every restart."""
MAX_JITTER = 60.0

_INTERVAL = re.compile(r"every\s*(\d+)\s*([smhd])", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True)
class Timing:
    """A parsed `schedule:` entry."""

    expression: str
    trigger: Any
    exact: Any
    """The same timetable without jitter, to show the slots."""
    period: float
    """Longest gap between two runs: the misfire grace, so the latest missed slot always runs."""


def trigger_for(expression: str) -> Timing:
    """Parse `every <n><s|m|h|d>` or a 5-field cron expression (UTC); ValueError says why."""
    text = " ".join(expression.split())
    interval = _INTERVAL.fullmatch(text)
    if interval:
        seconds = int(interval.group(1)) * _UNIT_SECONDS[interval.group(2).lower()]
        if seconds < 1:
            raise ValueError("an interval must be at least 1 second")
        options = {"seconds": seconds, "start_date": INTERVAL_ANCHOR, "timezone": UTC}
        trigger = GridIntervalTrigger(**options, jitter=_jitter(seconds))
        return Timing(text, trigger, GridIntervalTrigger(**options), float(seconds))
    if text.lower().startswith("every"):
        raise ValueError("an interval is `every <n><unit>` with unit s, m, h or d (`every 6h`)")
    fields = text.split(" ")
    if len(fields) != 5:
        raise ValueError(
            f"a cron expression has 5 fields (minute hour day month weekday), not {len(fields)}"
        )
    minute, hour, day, month, weekday = fields
    if day not in ("*", "?") and weekday not in ("*", "?"):
        raise ValueError(
            "give either a day of month or a day of week, not both (cron would run on either, "
            "APScheduler only on days matching both)"
        )
    options = {
        "minute": minute,
        "hour": hour,
        "day": day.replace("?", "*"),
        "month": month,
        "day_of_week": _weekdays(weekday.replace("?", "*")),
        "timezone": UTC,
    }
    try:
        exact = CronTrigger(**options)
        period = _longest_gap(exact)
        trigger = CronTrigger(**options, jitter=_jitter(period))
    except ValueError as exc:
        raise ValueError(str(exc).removeprefix("Error validating expression ")) from None
    return Timing(text, trigger, exact, period)


class GridIntervalTrigger(IntervalTrigger):  # type: ignore[misc]
    """An interval whose slots stay on the grid from INTERVAL_ANCHOR.

    APScheduler 3 adds the interval to the previous fire time, jitter included, so the
    jitter accumulates: after months `every 6h` would no longer fire near 00/06/12/18.
    """

    def get_next_fire_time(self, previous_fire_time: Any, now: datetime) -> Any:
        if previous_fire_time is not None:
            step = self.interval_length
            since = (previous_fire_time - self.start_date).total_seconds()
            previous_fire_time = self.start_date + timedelta(seconds=since // step * step)
        return super().get_next_fire_time(previous_fire_time, now)


def _jitter(period: float) -> float:
    """Up to a minute, and at most 5% of the period: servers do not see a burst on the hour."""
    return min(MAX_JITTER, period * 0.05)


def _longest_gap(trigger: Any) -> float:
    now = datetime.now(UTC)
    fire = trigger.get_next_fire_time(None, now)
    if fire is None:
        raise ValueError("this expression never fires")
    gap = 0.0
    for _ in range(12):
        following = trigger.get_next_fire_time(fire, fire)
        if following is None:
            break
        gap = max(gap, (following - fire).total_seconds())
        fire = following
    return gap or 86400.0 * 366


def _weekdays(field: str) -> str:
    """Cron weekday numbers (0 or 7 = Sunday) as names: APScheduler 3 counts 0 as Monday."""
    if field == "*":
        return field
    days: set[int] = set()
    for part in field.split(","):
        span, slash, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() else 0
        if slash and step < 1:
            raise ValueError(f"day of week {field!r}: bad step {step_text!r}")
        if span == "*":
            first, last = 0, 6
        else:
            start, dash, end = span.partition("-")
            first = _day_number(start, field)
            last = _day_number(end, field) if dash else (6 if slash else first)
        if last < first:
            raise ValueError(f"day of week {field!r}: {span} runs backwards")
        days.update(day % 7 for day in range(first, last + 1, step or 1))
    return ",".join(_CRON_DAYS[day] for day in sorted(days))


def _day_number(text: str, field: str) -> int:
    """0-7 as written (7 is Sunday again, so `5-7` is Friday to Sunday), or a day's name."""
    word = text.strip().lower()
    if word.isdigit() and int(word) <= 7:
        return int(word)
    if word in _CRON_DAYS:
        return _CRON_DAYS.index(word)
    raise ValueError(f"day of week {field!r}: {text!r} is not 0-7 or sun..sat")
