"""The `tracker` command line: one module per command group, `app` the entry point.

`commands.py` holds the top-level commands, `db.py`, `history.py` and `plc.py` their
groups, `common.py` the options and error handling they share, `progress.py` the
progress bar. Each command is a thin layer over a function of the package.
"""

from tracker.cli.commands import app, main

__all__ = ["app", "main"]
