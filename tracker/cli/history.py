"""`tracker history`: the public archives of past statistics, and importing them.

`tracker history import NAME|FILE`: a known archive NAME imports its shipped copy
(only `mastodonusercount` is shipped: the others' licences do not allow it), or with
`--file PATH` a copy the user downloaded; anything that is not a known name is a
FILE, whose archive is recognised by its header. A known name always wins, so a
file that happens to be called `mastodonusercount` is given as `./mastodonusercount`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tracker.cli.common import ConfigOption, database_of, one_line_errors
from tracker.errors import TrackerError
from tracker.history.archives import ARCHIVES, Archive

history_app = typer.Typer(
    help="Public archives of past statistics: list them, import one as its own source.",
    no_args_is_help=True,
)


class HistoryUsageError(TrackerError):
    """A name or file the command cannot use (exit 2, like any command-line mistake)."""

    exit_code = 2


@history_app.command("list")
@one_line_errors
def list_command(config: ConfigOption = None) -> None:
    """Each archive: rows in the database and their range, shipped or not, origin, licence."""
    from tracker.loader import load_config
    from tracker.storage.history_rows import source_extents

    settings = load_config(config)
    with database_of(settings) as engine:
        extents = source_extents(engine, [archive.source for archive in ARCHIVES.values()])
    for archive in ARCHIVES.values():
        extent = extents.get(archive.source)
        stored = (
            f"{extent.rows:,} rows, {extent.first:%Y-%m-%d}..{extent.last:%Y-%m-%d}"
            if extent
            else "0 rows (not imported)"
        )
        shipped = "shipped" if archive.shipped else "not shipped"
        how = f"tracker history import {archive.name}" + ("" if archive.shipped else " --file PATH")
        typer.echo(f"{archive.name} ({archive.platform}, {shipped}): {stored}")
        typer.echo(f"  measures: {archive.measures}")
        typer.echo(f"  origin:   {archive.origin}")
        typer.echo(f"  licence:  {archive.licence}")
        typer.echo(f"  format:   {archive.format.describe()}")
        typer.echo(f"  import:   {how}")


@history_app.command("import")
@one_line_errors
def import_command(
    what: Annotated[
        str,
        typer.Argument(
            metavar="NAME|FILE",
            help="A known archive (see `tracker history list`) or a downloaded file.",
        ),
    ],
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="The downloaded file of archive NAME.", dir_okay=False),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Import an archive as its own source, all or nothing; a second import adds nothing.

    NAME alone imports the shipped copy (mastodonusercount); NAME --file PATH or just
    FILE a downloaded one, its archive recognised by its header. A bad row rejects the
    whole file with its line number.
    """
    from tracker.clock import clock_from_env
    from tracker.history.importer import import_file, import_shipped
    from tracker.loader import load_config

    archive, path = _resolve(what, file)
    settings = load_config(config)
    now = clock_from_env()()
    with database_of(settings) as engine:
        if path is not None:
            result = import_file(engine, path, now, archive)
        else:
            assert archive is not None  # _resolve returns a file or a shipped archive
            result = import_shipped(engine, archive, now)
    typer.echo(result.line())


def _resolve(what: str, file: Path | None) -> tuple[Archive | None, Path | None]:
    """(the archive named, or None to detect it; the file, or None for the shipped copy)."""
    archive = ARCHIVES.get(what)
    if archive is None:
        if file is not None:
            raise HistoryUsageError(f"{what!r} is not a known archive ({_names()})")
        path = Path(what)
        if not path.is_file():
            raise HistoryUsageError(f"{what!r} is neither a known archive ({_names()}) nor a file")
        return None, path
    if file is None and archive.shipped is None:
        raise HistoryUsageError(
            f"{archive.name} is not shipped ({archive.licence}): download it from "
            f"{archive.origin} and run `tracker history import {archive.name} --file PATH`"
        )
    return archive, file


def _names() -> str:
    return ", ".join(ARCHIVES)
