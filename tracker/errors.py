"""Errors that reach the user as one line and a documented exit code.

The CLI turns these into `error: <message>` on stderr; nothing else should be
printed for them (no traceback), because cron mail and CI logs are read by people.
"""


class TrackerError(Exception):
    """A failure the user can act on; `exit_code` is what the CLI returns."""

    exit_code = 1


class ConfigError(TrackerError):
    """A mistake in the configuration: names the dotted key and why (exit 2)."""

    exit_code = 2


class StorageError(TrackerError):
    """The database cannot be opened or written (exit 1)."""

    exit_code = 1


class ImportFileError(TrackerError):
    """A CSV import was refused; nothing of the file was written (exit 1)."""

    exit_code = 1


class LockHeldError(TrackerError):
    """Another collection holds the lock (exit 75, EX_TEMPFAIL, so cron retries later)."""

    exit_code = 75
