"""The `tracker` command. Each command is a thin wrapper over a plain Python function.

Exit codes: 0 done (even if some targets failed: that is recorded, not fatal);
1 nothing could be recorded (database unwritable, bad import file); 2 a mistake
in the configuration or the command line; 75 another collection holds the lock.
Errors are one line on stderr, never a traceback, because people read cron mail.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tracker import __version__
from tracker.cli.common import (
    ConfigOption,
    DateOption,
    VerboseOption,
    as_day,
    database_of,
    one_line_errors,
)
from tracker.cli.db import db_app
from tracker.cli.history import history_app
from tracker.cli.plc import plc_app
from tracker.clock import clock_from_env
from tracker.errors import TrackerError
from tracker.exchange import export, import_csv
from tracker.instants import iso_z
from tracker.loader import load_config
from tracker.logs import setup_logging
from tracker.storage.engine import describe_url
from tracker.storage.filters import Filters

if TYPE_CHECKING:
    from tracker.runner import StopRequest

app = typer.Typer(
    name="tracker",
    help="Measure where people go when they leave Twitter/X: collect public usage statistics "
    "into SQLite and chart the migration.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(db_app, name="db")
app.add_typer(history_app, name="history")
app.add_typer(plc_app, name="plc")


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
    """Run the enabled collectors once and print one summary line per collector.

    One collection at a time per database: a second one exits at once with code 75.
    SIGTERM or Ctrl-C: no new targets, those in flight get a few seconds, the run is
    recorded `interrupted`, exit 0; a second signal exits at once.
    """
    from tracker.cli.progress import progress_callbacks
    from tracker.locked import collect_locked
    from tracker.runner import StopRequest

    setup_logging(verbose)
    settings = load_config(config)
    stop = StopRequest()
    with _signals_request(stop), progress_callbacks(verbose) as callbacks:
        summaries = collect_locked(
            settings,
            only=only,
            clock=clock_from_env(),
            on_start=callbacks.on_start,
            on_target=callbacks.on_target,
            on_summary=callbacks.on_summary,
            stop=stop,
            handle_signals=True,
        )
    if stop.is_set() and not summaries:
        typer.echo("stopped before any collector started")
    elif not summaries:
        typer.echo(f"no collector is enabled in {settings.path}")


@app.command()
@one_line_errors
def crawl(config: ConfigOption = None, verbose: VerboseOption = 0) -> None:
    """Find every fediverse server reachable from the seeds and measure each one.

    Needs `collectors.fediverse.discover` (docs/crawl.md). Obeys robots.txt, opt-outs
    and `exclude`; never contacts an address the address rule refuses. Prints one
    summary line. Holds the collection lock (a second one exits 75). SIGTERM or
    Ctrl-C: no new servers, those in flight get a few seconds; the next crawl
    resumes where this one ended.
    """
    from tracker.locked import crawl_locked
    from tracker.runner import StopRequest

    setup_logging(verbose)
    settings = load_config(config)
    stop = StopRequest()
    with _signals_request(stop):
        summary = crawl_locked(settings, clock=clock_from_env(), stop=stop, handle_signals=True)
    typer.echo(summary.line())


@contextmanager
def _signals_request(stop: StopRequest) -> Iterator[None]:
    """Until the event loop takes over (and after), SIGTERM/SIGINT request the stop too."""
    handlers = {
        signum: signal.signal(signum, lambda number, _frame: stop.on_signal(number))
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


@app.command()
@one_line_errors
def schedule(
    config: ConfigOption = None,
    list_jobs: Annotated[
        bool, typer.Option("--list", help="Show the jobs and their next run times, then exit.")
    ] = False,
    verbose: Annotated[
        int,
        typer.Option("--verbose", "-v", count=True, help="A line per target (-vv: per request)."),
    ] = 0,
) -> None:
    """Run the collectors and the report on the `schedule:` timetable until SIGTERM.

    Logs one line per event on stderr. Job state lives in the database, so a restart
    runs each missed job once. Only one scheduler per database (another exits 75).
    """
    from tracker.schedule import serve
    from tracker.schedule_plan import describe_plan

    settings = load_config(config)
    if list_jobs:
        for line in describe_plan(settings):
            typer.echo(line)
        return
    setup_logging(verbose, service=True)
    raise typer.Exit(serve(settings, clock_from_env()))


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
    from tracker.storage.health import recent_runs, target_health

    settings = load_config(config)
    with database_of(settings) as engine:
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
    return iso_z(moment, sep=" ") if moment else "-"


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
    filters = Filters(as_day(since), as_day(until), source, metric, platform)
    with database_of(settings) as engine:
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
    with database_of(settings) as engine:
        written = import_csv(engine, file, clock_from_env()())
    typer.echo(f"imported {written} observations from {file}")


@app.command()
@one_line_errors
def reparse(
    config: ConfigOption = None,
    source: Annotated[str | None, typer.Option(help="Only this collector's attempts.")] = None,
    since: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            show_default=False,
            help="Only runs with an attempt on or after this day (UTC); each such run is "
            "reparsed whole, its attempts from before the day included.",
        ),
    ] = None,
) -> None:
    """Rebuild observations from the payload archive (after a parser fix), without fetching.

    A run is reparsed whole (its points record the run, not the attempt), oldest first.
    """
    from tracker.reparse import reparse as run_reparse

    settings = load_config(config)
    with database_of(settings) as engine:
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
    from tracker.locked import report_locked

    settings = load_config(config)
    # Two reports never write the same folders at once: the second waits its turn.
    result = report_locked(
        settings,
        clock=clock_from_env(),
        output=output,
        since=as_day(since),
        until=as_day(until),
    )
    assert result is not None  # only a `should_stop` can end the wait without one
    where = str(result.folder)
    if result.latest != result.folder:
        where += f" (and {result.latest})"
    typer.echo(f"report written to {where}: {', '.join(result.files)}")
    if result.empty:
        typer.echo("the database holds no observations for this period: the report says so")


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
