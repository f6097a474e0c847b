"""Options and error handling shared by every `tracker` command module."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

from tracker.config import Config
from tracker.errors import TrackerError
from tracker.storage.engine import open_database

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Config file (default: $TRACKER_CONFIG, else ./config.yaml).",
        dir_okay=False,
    ),
]
VerboseOption = Annotated[
    int, typer.Option("--verbose", "-v", count=True, help="More log lines (-vv for HTTP).")
]
DateOption = Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], show_default=False)]

P = ParamSpec("P")
R = TypeVar("R")


def one_line_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a TrackerError into `error: ...` on stderr and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except TrackerError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper


def as_day(value: datetime | None) -> date | None:
    return value.date() if value else None


@contextmanager
def database_of(config: Config) -> Iterator[Any]:
    engine = open_database(config.database)
    try:
        yield engine
    finally:
        engine.dispose()
