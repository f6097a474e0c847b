"""The `tracker` command. Each command is a thin wrapper over a plain Python function.

Exit codes: 0 done (even if some targets failed: that is recorded, not fatal);
1 nothing could be recorded (database unwritable, bad import file); 2 a mistake
in the configuration or the command line; 75 another collection holds the lock.
Errors are one line on stderr, never a traceback, because people read cron mail.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

from tracker import __version__
from tracker.clock import clock_from_env
from tracker.config import Config, load_config
from tracker.errors import TrackerError
from tracker.exchange import export, import_csv
from tracker.storage.engine import (
    current_revision,
    describe,
    head_revision,
    open_database,
    upgrade_schema,
)
from tracker.storage.filters import Filters

app = typer.Typer(
    name="tracker",
    help="Measure where people go when they leave Twitter/X: collect public usage statistics "
    "into SQLite and chart the migration.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")

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


def setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        stream=sys.stderr,
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        force=True,
    )
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)


def _day(value: datetime | None) -> date | None:
    return value.date() if value else None


@contextmanager
def _database(config: Config) -> Iterator[Any]:
    engine = open_database(config.database)
    try:
        yield engine
    finally:
        engine.dispose()


@app.command()
@one_line_errors
def collect(
    config: ConfigOption = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Run only this collector (repeatable), even if disabled."),
    ] = None,
    verbose: VerboseOption = 0,
) -> None:
    """Run the enabled collectors once and print one summary line per collector."""
    from tracker.cli_progress import progress_callbacks
    from tracker.collect import collect as run_collect

    setup_logging(verbose)
    settings = load_config(config)
    with progress_callbacks(verbose) as callbacks:
        summaries = run_collect(
            settings,
            only=only,
            clock=clock_from_env(),
            on_start=callbacks.on_start,
            on_target=callbacks.on_target,
            on_summary=callbacks.on_summary,
        )
    if not summaries:
        typer.echo(f"no collector is enabled in {settings.path}")


@app.command()
@one_line_errors
def collectors(config: ConfigOption = None) -> None:
    """Each collector: enabled or why not, what it measures, its metrics and config keys."""
    from tracker.collect import collector_states

    settings = load_config(config)
    for state in collector_states(settings):
        typer.echo(state.line())
        typer.echo(f"  measures: {state.summary}")
        typer.echo(f"  metrics:  {', '.join(state.metrics)}")
        typer.echo(f"  config:   {', '.join(state.config_keys)}")


@app.command()
@one_line_errors
def status(
    config: ConfigOption = None,
    runs: Annotated[int, typer.Option(help="How many recent runs to show.")] = 10,
    source: Annotated[str | None, typer.Option(help="Only this collector's targets.")] = None,
) -> None:
    """Recent runs, and per target the last success and the last error with its kind."""
    from tracker.status import recent_runs, target_health

    settings = load_config(config)
    with _database(settings) as engine:
        run_rows = recent_runs(engine, runs)
        targets = target_health(engine, source)
    typer.echo(f"database: {describe_url(settings.database)}")
    typer.echo("recent runs:" if run_rows else "no runs yet: try `tracker collect`")
    for run in run_rows:
        took = ""
        if run.finished_at:
            took = f" {(run.finished_at - run.started_at).total_seconds():.0f}s"
        typer.echo(
            f"  #{run.id} {_when(run.started_at)}{took} {run.collector} {run.status}: "
            f"{run.ok} ok, {run.failed} failed, {run.skipped} skipped, "
            f"{run.written} observations" + (f" ({run.message})" if run.message else "")
        )
    if targets:
        typer.echo("targets:")
    for row in targets:
        ok = _when(row.last_ok) if row.last_ok else "never"
        line = f"  {row.source} {row.target}: last success {ok}"
        if row.last_error_kind:
            line += (
                f"; last error {_when(row.last_error_at)} {row.last_error_kind}: "
                f"{row.last_error_detail or ''}".rstrip()
            )
        if row.rejected_last:
            line += f"; {row.rejected_last} values rejected in the last attempt"
        typer.echo(line)


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if moment else "-"


def describe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return parsed.render_as_string(hide_password=True)


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"


@app.command("export")
@one_line_errors
def export_command(
    config: ConfigOption = None,
    fmt: Annotated[ExportFormat, typer.Option("--format", help="csv or json.")] = ExportFormat.csv,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    since: DateOption = None,
    until: DateOption = None,
    source: Annotated[str | None, typer.Option(help="Only this collector.")] = None,
    metric: Annotated[str | None, typer.Option(help="Only this metric.")] = None,
    platform: Annotated[str | None, typer.Option(help="Only this platform.")] = None,
) -> None:
    """Observations as CSV or JSON, in a stable order.

    CSV header: source,platform,target,metric,period,observed_at,value
    """
    settings = load_config(config)
    filters = Filters(_day(since), _day(until), source, metric, platform)
    with _database(settings) as engine:
        if output is None:
            export(engine, sys.stdout, fmt.value, filters)
            return
        partial = output.with_name(output.name + ".partial")
        try:
            with partial.open("w", encoding="utf-8", newline="") as handle:
                count = export(engine, handle, fmt.value, filters)
            partial.replace(output)
        except OSError as exc:
            raise TrackerError(f"cannot write {output}: {exc.strerror}") from None
    typer.echo(f"wrote {count} observations to {output}", err=True)


@app.command("import")
@one_line_errors
def import_command(
    file: Annotated[Path, typer.Argument(help="A CSV in the export format.")],
    config: ConfigOption = None,
) -> None:
    """Upsert observations from a CSV in the export format; a bad row rejects the whole file."""
    settings = load_config(config)
    with _database(settings) as engine:
        written = import_csv(engine, file, clock_from_env()())
    typer.echo(f"imported {written} observations from {file}")


@app.command()
@one_line_errors
def reparse(
    config: ConfigOption = None,
    source: Annotated[str | None, typer.Option(help="Only this collector's attempts.")] = None,
    since: DateOption = None,
) -> None:
    """Rebuild observations from the payload archive (after a parser fix), without fetching."""
    from tracker.reparse import reparse as run_reparse

    settings = load_config(config)
    with _database(settings) as engine:
        summary = run_reparse(
            engine, settings, source=source, since=since.replace(tzinfo=UTC) if since else None
        )
    typer.echo(summary.line())


@app.command()
@one_line_errors
def report(
    config: ConfigOption = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Folder to write (default: data/reports/<UTC date>/ + latest/)."
        ),
    ] = None,
    since: DateOption = None,
    until: DateOption = None,
) -> None:
    """Charts (PNG), index.html and summary.json of the migration, from the database."""
    from tracker.report.build import run_report

    settings = load_config(config)
    with _database(settings) as engine:
        result = run_report(
            engine,
            settings,
            now=clock_from_env()(),
            output=output,
            since=_day(since),
            until=_day(until),
        )
    where = str(result.folder)
    if result.latest != result.folder:
        where += f" (and {result.latest})"
    typer.echo(f"report written to {where}: {', '.join(result.files)}")
    if result.empty:
        typer.echo("the database holds no observations for this period: the report says so")


@db_app.command("upgrade")
@one_line_errors
def db_upgrade(config: ConfigOption = None) -> None:
    """Apply the schema migrations (every command also does this by itself)."""
    settings = load_config(config)
    engine = open_database(settings.database, upgrade=False)
    try:
        before = current_revision(engine)
        changed = upgrade_schema(engine)
    except Exception as exc:
        from sqlalchemy.exc import SQLAlchemyError

        from tracker.storage.engine import short_reason

        if isinstance(exc, SQLAlchemyError):
            raise TrackerError(f"cannot upgrade {describe(engine)}: {short_reason(exc)}") from None
        raise
    finally:
        engine.dispose()
    head = head_revision()
    if changed:
        typer.echo(
            f"{describe_url(settings.database)}: upgraded from {before or 'empty'} to {head}"
        )
    else:
        typer.echo(f"{describe_url(settings.database)}: already at revision {head}")


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"tracker {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=version_callback, is_eager=True, help="Show version."),
    ] = False,
) -> None:
    """Measure where people go when they leave Twitter/X."""


def main() -> None:
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    app()
