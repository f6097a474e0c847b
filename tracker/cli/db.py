"""`tracker db ...`: database maintenance commands."""

from __future__ import annotations

from typing import Annotated

import typer

from tracker.cli.common import ConfigOption, database_of, one_line_errors
from tracker.errors import ConfigError, TrackerError
from tracker.loader import load_config
from tracker.storage.engine import (
    current_revision,
    describe,
    describe_url,
    head_revision,
    open_database,
    upgrade_schema,
)

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


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


@db_app.command("copy")
@one_line_errors
def db_copy(
    to: Annotated[
        str,
        typer.Option(
            "--to",
            envvar="TRACKER_COPY_TO",
            help="Target: a SQLAlchemy URL (or $TRACKER_COPY_TO), e.g. "
            "postgresql+psycopg://user@host/db, or the path of an SQLite file (relative "
            "to the current folder).",
            show_default=False,
        ),
    ],
    config: ConfigOption = None,
    batch: Annotated[
        int, typer.Option(min=1, max=1_000_000, help="Rows per target transaction.")
    ] = 20_000,
) -> None:
    """Copy the whole database to another (SQLite <-> PostgreSQL), resumably, and verify it.

    Run it again after an interruption: it skips what is already there. Each table
    is verified by row count and checksum, one line per table.
    """
    import time

    from sqlalchemy.exc import SQLAlchemyError

    from tracker.storage.copy import copy_database, copy_summary
    from tracker.storage.engine import short_reason

    settings = load_config(config)
    target_url = _target_url(to)
    started = time.monotonic()
    source = open_database(settings.database)
    try:
        target = open_database(target_url)
    except TrackerError:
        source.dispose()
        raise
    typer.echo(f"copying {describe(source)} to {describe(target)}")
    try:
        reports = copy_database(
            source,
            target,
            batch_rows=batch,
            on_table=lambda report: typer.echo(report.line()),
        )
    except SQLAlchemyError as exc:
        raise TrackerError(f"copy to {describe(target)} failed: {short_reason(exc)}") from None
    finally:
        source.dispose()
        target.dispose()
    different = [r.name for r in reports if not r.matches]
    if different:
        raise TrackerError(
            f"the copy differs from the source in {', '.join(different)} "
            "(did something write to the target meanwhile?); run the same command again"
        )
    typer.echo(f"copy verified: {copy_summary(reports, time.monotonic() - started)}")


def _target_url(text: str) -> str:
    from pathlib import Path

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if "://" not in text and text.strip() and not text.startswith(":"):
        text = f"sqlite:///{Path(text).expanduser().resolve()}"  # a plain path: an SQLite file
    try:
        url = make_url(text)
    except ArgumentError:
        raise ConfigError(f"--to: not a valid SQLAlchemy URL: {text!r}") from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(f"--to: db copy supports sqlite and postgresql, not {url.drivername}")
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            raise ConfigError("--to: give the SQLite target a file path")
        url = url.set(database=str(Path(database).expanduser().resolve()))
    return url.render_as_string(hide_password=False)


@db_app.command("prune")
@one_line_errors
def db_prune(
    payloads_older_than: Annotated[
        str,
        typer.Option(
            "--payloads-older-than",
            help="Remove archived response bodies only fetched longer ago than this: "
            "90d (days) or 36h (hours). Observations are never pruned.",
            show_default=False,
        ),
    ],
    config: ConfigOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be removed.")
    ] = False,
    vacuum: Annotated[
        bool,
        typer.Option(
            "--vacuum/--no-vacuum", help="Reclaim the space afterwards (VACUUM) (default: yes)."
        ),
    ] = True,
) -> None:
    """Remove old archived response bodies (the fast-growing part), then VACUUM."""
    from sqlalchemy.exc import SQLAlchemyError

    from tracker.clock import clock_from_env
    from tracker.storage.engine import short_reason
    from tracker.storage.prune import parse_age, prune_payloads

    try:
        age = parse_age(payloads_older_than)
    except ValueError as exc:
        raise ConfigError(f"--payloads-older-than: {exc}") from None
    settings = load_config(config)
    cutoff = clock_from_env()() - age
    with database_of(settings) as engine:
        try:
            summary = prune_payloads(engine, cutoff, dry_run=dry_run, vacuum=vacuum)
        except SQLAlchemyError as exc:
            raise TrackerError(f"cannot prune {describe(engine)}: {short_reason(exc)}") from None
    typer.echo(f"{describe_url(settings.database)}: {summary.line(dry_run)}")
