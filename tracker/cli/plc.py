"""`tracker plc rebuild`: recount the `plc` day totals from the archived export pages.

After a fix to the counting (or new `collectors.plc.families`), every archived page
is read back oldest first and counted again, in one transaction, replacing the day
totals and the cursor (tracker/storage/plc_rows.py `rebuild`). Holds the collection
lock, so no `plc` run pages meanwhile. Errors are one line, with the exit codes of
every command: 2 for a config mistake, 75 when a collection holds the lock, 1 else.
"""

from __future__ import annotations

import typer

from tracker.cli.common import ConfigOption, one_line_errors
from tracker.errors import TrackerError

plc_app = typer.Typer(
    help="The `plc` collector's day totals: recount them from the archived pages.",
    no_args_is_help=True,
)


@plc_app.command("rebuild")
@one_line_errors
def rebuild_command(config: ConfigOption = None) -> None:
    """Recount every archived export page in order, replacing the day totals and the cursor.

    All or nothing: if a page's body was pruned, nothing changes (exit 1).
    """
    from tracker.config import PlcSettings
    from tracker.loader import load_config
    from tracker.lock import database_lock
    from tracker.storage.engine import open_database
    from tracker.storage.plc_rows import SOURCE, rebuild

    try:
        settings = load_config(config)
        section = settings.collectors.get(SOURCE)
        plc_settings = section if isinstance(section, PlcSettings) else PlcSettings()
        with database_lock(settings.database):
            engine = open_database(settings.database)
            try:
                pages = rebuild(engine, plc_settings)
            finally:
                engine.dispose()
    except RuntimeError as exc:  # a pruned page: nothing was changed
        raise TrackerError(f"plc rebuild: {exc}") from None
    typer.echo(f"plc rebuild: {pages:,} archived pages recounted; the cursor follows the last one")
