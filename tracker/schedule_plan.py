"""What `tracker schedule` runs and when: the jobs from the config, and `--list`.

Apart from the running service (tracker.schedule) so the plan can be read and
tested without APScheduler's loop, the lock or the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from tracker.clock import system_clock
from tracker.collectors import registry
from tracker.config import Config
from tracker.instants import iso_z
from tracker.timetable import Timing, trigger_for

REPORT = "report"
CRAWL = "crawl"
"""Runs only when `collectors.fediverse.discover` is set (docs/crawl.md): daily, so
discovery is fresh each day while `fediverse` every 6 h measures the alive servers."""

DEFAULT_SCHEDULE: dict[str, str] = {
    **registry.default_schedules(),
    CRAWL: "0 3 * * *",
    REPORT: "0 4 * * *",
}
"""UTC. Each collector declares its own default (`Collector.default_schedule`, with the
reason for its time); they are staggered so jobs rarely queue, and the report comes
after the night's collections."""


@dataclass(frozen=True)
class Job:
    name: str
    timing: Timing

    @property
    def label(self) -> str:
        """Stored with the job: a different label at start means the timetable changed."""
        return f"{self.name} [{self.timing.expression}]"


def plan(config: Config) -> tuple[list[Job], list[str]]:
    """The jobs to schedule, and one line for each one that will not run, and why.

    A collector runs on its `schedule:` entry, else its default, only when its
    `collectors:` section is present and enabled (as for `tracker collect`).
    """
    wanted = {**DEFAULT_SCHEDULE, **config.schedule}
    jobs: list[Job] = []
    notes: list[str] = []
    for name in [*registry.names(), CRAWL, REPORT]:
        expression = wanted.get(name)
        explicit = name in config.schedule
        if expression is None:
            if explicit:
                notes.append(f"{name}: not scheduled (schedule.{name} is off)")
            elif name != REPORT:
                notes.append(f"{name}: not scheduled (no default; set schedule.{name})")
            continue
        if name == CRAWL:
            fediverse = config.collectors.get("fediverse")
            if fediverse is None or getattr(fediverse, "discover", None) is None:
                if explicit:
                    notes.append(
                        f"crawl: not scheduled: collectors.fediverse.discover is not in "
                        f"{config.path} (ignoring schedule.crawl: {expression})"
                    )
                continue
            jobs.append(Job(name, trigger_for(expression)))
            continue
        settings = config.collectors.get(name)
        if name != REPORT and (settings is None or not settings.enabled):
            why = "is not in" if settings is None else "is disabled in"
            source = f"schedule.{name}" if explicit else "the default schedule"
            notes.append(
                f"{name}: not scheduled: collectors.{name} {why} {config.path} "
                f"(ignoring {source}: {expression})"
            )
            continue
        jobs.append(Job(name, trigger_for(expression)))
    return jobs, notes


def when(moment: datetime | None) -> str:
    """A moment as the log and `--list` show it: UTC, to the second."""
    if moment is None:
        return "never"
    return iso_z(moment, sep=" ")


def describe_plan(config: Config) -> Iterator[str]:
    """`tracker schedule --list`: each job and its next run times, without starting."""
    jobs, notes = plan(config)
    now = system_clock()
    for job in jobs:
        exact = job.timing.exact
        fire = exact.get_next_fire_time(None, now)
        upcoming = []
        for _ in range(3):
            if fire is None:
                break
            upcoming.append(when(fire))
            fire = exact.get_next_fire_time(fire, fire + timedelta(seconds=1))
        yield f"{job.name}: {job.timing.expression} (UTC); next: {', '.join(upcoming)}"
    yield from notes
