"""One collection at a time per database, and one scheduler; reports never overlap.

Two collections at once would not corrupt anything (each target is one
transaction), but they would double the load on every server polled and
interleave their runs, so the second one leaves at once with exit code 75
(EX_TEMPFAIL: cron tries again at the next slot).

SQLite: `flock` on a file beside the database (`tracker.db.lock`). The kernel
drops the lock when its process dies, however it dies, so a stale lock never
blocks a later run; the holder's pid is written into the file for the message
only. PostgreSQL: a session advisory lock held on a dedicated connection for
the whole run (the server drops it when that connection ends), with the pid in
the connection's `application_name`, where other sessions can read it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from tracker.errors import LockHeldError, StorageError
from tracker.storage.engine import describe_url

_PG_KEYS = {"collection": 7031244002, "scheduler": 7031244003}
"""Advisory lock keys (7031244001 serialises schema upgrades, in storage/engine.py)."""
_SUFFIXES = {"collection": ".lock", "scheduler": ".scheduler.lock"}
WAIT_POLL = 0.25


def holder_tag() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}"


@contextlib.contextmanager
def database_lock(url: str, purpose: str = "collection") -> Iterator[None]:
    """Hold the `purpose` lock of the database at `url`, or raise LockHeldError at once."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        with _advisory_lock(url, purpose):
            yield
        return
    database = parsed.database or ""
    if backend != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        yield  # a private in-memory database, or an engine we have no lock for
        return
    path = Path(database).expanduser()
    lock_path = path.with_name(path.name + _SUFFIXES[purpose])
    handle = _open_lock_file(lock_path, str(path))
    try:
        if not _try_flock(handle):
            raise LockHeldError(
                f"another {purpose} holds the lock on {path}{_pid_text(lock_path)}; "
                "try again when it has finished"
            )
        _write_holder(handle)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(handle, 0)
    finally:
        os.close(handle)  # closing the descriptor releases the flock


def report_lock_path(output: Path | None, default_root: Path) -> Path:
    """Beside the folder a report replaces (never inside it: the folder is renamed away)."""
    if output is None:
        return default_root / ".report.lock"
    return output.parent / f".{output.name}.report.lock"


@contextlib.contextmanager
def waiting_lock(
    lock_path: Path, *, should_stop: Callable[[], bool] = lambda: False
) -> Iterator[bool]:
    """Wait for an exclusive lock file; yields False if `should_stop` said stop first.

    Reports wait for each other instead of failing: a report takes seconds, and a
    person running `tracker report` while the scheduler writes one wants theirs too.
    """
    handle = _open_lock_file(lock_path, str(lock_path.parent))
    try:
        while not _try_flock(handle):
            if should_stop():
                yield False
                return
            time.sleep(WAIT_POLL)
        _write_holder(handle)
        yield True
    finally:
        os.close(handle)


def _open_lock_file(lock_path: Path, what: str) -> int:
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # mkdir or open
        if exc.errno == errno.EROFS:
            raise StorageError(f"cannot write to {what}: its file system is read-only") from None
        if exc.errno == errno.EACCES:
            # A file we may read but not write still locks (flock needs no write
            # access); the database then reports its own write error, precisely.
            with contextlib.suppress(OSError):
                return os.open(lock_path, os.O_RDONLY)
        raise StorageError(
            f"cannot write to {what}: cannot open the lock file {lock_path}: {exc.strerror}"
        ) from None


def _try_flock(handle: int) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _write_holder(handle: int) -> None:
    with contextlib.suppress(OSError):  # a read-only lock file still locks
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{holder_tag()}\n".encode(), 0)


HOLDER_WAIT = 0.5
"""The holder writes its pid just after taking the lock: a loser that looks in between
reads an empty file, so it looks again for up to this long (once, for the message)."""


def _pid_text(lock_path: Path) -> str:
    deadline = time.monotonic() + HOLDER_WAIT
    while True:
        try:
            first = lock_path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return ""
        if first.startswith("pid "):
            return f" ({first.splitlines()[0]})"
        if first or time.monotonic() >= deadline:
            return ""
        time.sleep(0.02)


@contextlib.contextmanager
def _advisory_lock(url: str, purpose: str) -> Iterator[None]:
    """`pg_try_advisory_lock` on a connection of its own, kept open for the whole run."""
    key = _PG_KEYS[purpose]
    tag = f"tracker {purpose} {holder_tag()}"[:63]
    engine = create_engine(url, poolclass=NullPool, connect_args={"application_name": tag})
    where = describe_url(url)
    try:
        try:
            connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()
            raise StorageError(
                f"cannot open database {where}: {reason[0] if reason else type(exc).__name__}"
            ) from None
        with connection:
            taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
            if not taken.scalar():
                holder = _advisory_holder(connection, key)
                raise LockHeldError(
                    f"another {purpose} holds the lock on {where}"
                    + (f" ({holder})" if holder else "")
                    + "; try again when it has finished"
                )
            try:
                yield
            finally:
                with contextlib.suppress(SQLAlchemyError):
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    finally:
        engine.dispose()


def _advisory_holder(connection: Any, key: int) -> str:
    """The holder's `pid N on HOST` from its application_name, or "" if not visible."""
    with contextlib.suppress(SQLAlchemyError):
        name = connection.execute(
            text(
                "SELECT a.application_name FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND l.classid = :high AND l.objid = :low AND l.objsubid = 1"
            ),
            {"high": key >> 32, "low": key & 0xFFFFFFFF},
        ).scalar()
        if isinstance(name, str) and " pid " in name:
            return "pid " + name.split(" pid ", 1)[1]
    return ""
