"""What `tracker collect` shows while it works.

A rich progress bar only when stderr is a terminal: cron mail and CI logs get
the summary lines alone (and one log line per target with `-v`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from tracker.model import TargetResult
from tracker.runner import RunSummary

log = logging.getLogger("tracker.collect")


@dataclass
class Callbacks:
    progress: Progress | None
    task: TaskID | None = None
    verbose: int = 0
    _shown: set[str] = field(default_factory=set)

    def on_start(self, collector: str, total: int) -> None:
        if self.progress is not None:
            if self.task is not None:
                self.progress.remove_task(self.task)
            self.task = self.progress.add_task(collector, total=total)

    def on_target(self, result: TargetResult) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task)
        failure = result.failure or result.parsed.failure
        if failure is None:
            log.info("%s %s: ok", result.source, result.target)
        else:
            log.info(
                "%s %s: %s %s: %s",
                result.source,
                result.target,
                result.outcome,
                failure.kind,
                failure.detail,
            )

    def on_summary(self, summary: RunSummary) -> None:
        typer.echo(summary.line())  # stdout; rich shows it above a live progress bar


@contextmanager
def progress_callbacks(verbose: int) -> Iterator[Callbacks]:
    if not sys.stderr.isatty():
        yield Callbacks(progress=None, verbose=verbose)
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        yield Callbacks(progress=progress, verbose=verbose)
