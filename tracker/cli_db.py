"""`tracker db ...`: database maintenance commands."""

from __future__ import annotations

import typer

from tracker.cli_common import ConfigOption, describe_url, one_line_errors
from tracker.config import load_config
from tracker.errors import TrackerError
from tracker.storage.engine import (
    current_revision,
    describe,
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
