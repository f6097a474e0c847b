"""The one logging setup: one line per event on stderr, for the CLI and the scheduler.

The two differ only in what they are for. A command run by hand stays quiet
(warnings only; `-v` INFO, `-vv` every HTTP request). The scheduler is a service:
INFO by default (each job's start and summary, skips, misses), `-v` a line per
target and APScheduler's own, `-vv` every HTTP request; under systemd its lines
carry a `<priority>` prefix so journald keeps each line's level.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import ClassVar

STAMPED = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""cron mail and a terminal need our time stamp; journald stamps lines itself."""
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


class JournalFormatter(logging.Formatter):
    """`<priority>` prefixes let journald keep each line's level (`journalctl -p warning`)."""

    PRIORITIES: ClassVar[dict[int, int]] = {
        logging.DEBUG: 7,
        logging.INFO: 6,
        logging.WARNING: 4,
        logging.ERROR: 3,
    }

    def format(self, record: logging.LogRecord) -> str:
        return f"<{self.PRIORITIES.get(record.levelno, 2)}>{super().format(record)}"


def setup_logging(verbose: int, *, service: bool = False) -> None:
    """Log to stderr at the level `verbose` asks; `service` for `tracker schedule`."""
    handler = logging.StreamHandler(sys.stderr)
    if service and os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(JournalFormatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter(STAMPED, datefmt=DATE_FORMAT))
    if service:
        level = logging.DEBUG if verbose else logging.INFO
    else:
        level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, handlers=[handler], force=True)
    if service:
        for chatty in ("apscheduler", "alembic"):
            logging.getLogger(chatty).setLevel(logging.INFO if verbose else logging.WARNING)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)
