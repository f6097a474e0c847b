"""Opening a database: SQLite tuned for one writer and many readers, schema kept current.

SQLite runs in WAL mode with a busy timeout so a notebook can read while a
collection writes. Write transactions start with `BEGIN IMMEDIATE` (see
`write_transaction`): a deferred transaction that reads first and writes later
can fail at once with SQLITE_BUSY instead of waiting, which is exactly what a
long-running collector must not do.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from tracker.errors import StorageError

BUSY_TIMEOUT_MS = 30_000
_MIGRATIONS = Path(__file__).with_name("migrations")


def open_database(url: str, *, upgrade: bool = True) -> Engine:
    """An engine on `url`, its schema upgraded to the newest revision when `upgrade`."""
    parsed = make_url(url)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    kwargs: dict[str, Any] = {}
    if is_sqlite:
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            _ensure_parent(Path(database), url)
        kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if is_sqlite:
        _tune_sqlite(engine)
    if upgrade:
        try:
            upgrade_schema(engine)
        except SQLAlchemyError as exc:
            engine.dispose()
            reason = _read_only_reason(parsed) or short_reason(exc)
            raise StorageError(f"cannot open database {describe(engine)}: {reason}") from None
    return engine


def _read_only_reason(url: URL) -> str | None:
    """SQLite cannot even open a WAL database on a read-only file system: say so plainly."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    try:
        flags = os.statvfs(Path(url.database).expanduser().parent).f_flag
    except OSError:
        return None
    return "its file system is read-only" if flags & os.ST_RDONLY else None


def describe(engine: Engine) -> str:
    """The engine's database as a person would name it (see `describe_url`)."""
    return describe_url(engine.url)


def describe_url(url: str | URL) -> str:
    """A database as a person would name it: an SQLite file's path, else the URL
    without its password (messages and logs are read by people a password is not for)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return parsed.render_as_string(hide_password=True)


_HINTS = {
    "disk I/O error": "is the disk full, or the file over a size limit?",
    "attempt to write a readonly database": "the file or its file system is read-only",
    "unable to open database file": "does the folder exist, and may this user write there?",
}


def short_reason(exc: BaseException) -> str:
    """The driver's own one-line message (without SQLAlchemy's SQL echo), with a hint."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip()
    reason = text.splitlines()[0] if text else type(exc).__name__
    hint = _HINTS.get(reason)
    return f"{reason} ({hint})" if hint else reason


def _ensure_parent(path: Path, url: str) -> None:
    try:
        path.expanduser().parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the folder for {path}: {exc.strerror}") from None


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        with contextlib.suppress(sqlite3.OperationalError):  # a read-only file keeps its mode
            cursor.execute("PRAGMA journal_mode = WAL")
        # In WAL mode, NORMAL syncs the disk only at checkpoints, not at each commit:
        # what lets a collection commit every target on its own. A commit survives a
        # killed process; only a power cut may lose the last ones (never corrupts).
        cursor.execute("PRAGMA synchronous = NORMAL")
        # 64 MiB of page cache (default 2 MiB): the unique index of a long history
        # no longer fits the default, and bulk upserts then thrash the disk.
        cursor.execute("PRAGMA cache_size = -65536")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that takes the write lock first (waiting up to the busy timeout)."""
    with engine.connect() as plain:
        connection = plain
        if engine.dialect.name == "sqlite":
            connection = plain.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            yield connection


def _alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_schema(engine: Engine) -> bool:
    """Bring the schema to the newest revision; True when anything was applied.

    Cheap when current (one query). Two processes opening a new file at once are
    serialised by the write lock (SQLite) or an advisory lock (PostgreSQL).
    """
    head = head_revision()
    if current_revision(engine) == head:
        return False
    with write_transaction(engine) as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(7031244001)"))
        if MigrationContext.configure(connection).get_current_revision() == head:
            return False
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return True
