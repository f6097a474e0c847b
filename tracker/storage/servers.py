"""The crawl's `servers` table: every fediverse server it knows, and when each is due.

The crawl keeps the whole table in memory while it runs (tens of thousands of
short rows), so reading is one SELECT and writing is by host, inside the
transaction that stores the server's measurement: a kill never leaves a server
measured but not marked, or marked but not measured.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, inspect, select, update

from tracker.storage.points import insert_for
from tracker.storage.schema import runs, series, servers

COLUMNS = tuple(column.name for column in servers.columns)


def load_servers(engine: Engine) -> dict[str, dict[str, Any]]:
    """Every known server, by host."""
    with engine.connect() as connection:
        return {row["host"]: dict(row) for row in connection.execute(select(servers)).mappings()}


def insert_servers(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Add servers not yet known (a host already there keeps its row)."""
    if not rows:
        return
    statement = insert_for(connection.dialect.name, servers).on_conflict_do_nothing(
        index_elements=["host"]
    )
    connection.execute(statement, [_complete(row) for row in rows])


def save_servers(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write back whole rows of servers that exist (state, backoff, software...)."""
    if not rows:
        return
    names = [name for name in COLUMNS if name != "host"]
    statement = (
        update(servers)
        .where(servers.c.host == bindparam("key_host"))
        .values({name: bindparam(f"new_{name}") for name in names})
    )
    connection.execute(
        statement,
        [
            {"key_host": row["host"], **{f"new_{name}": row.get(name) for name in names}}
            for row in rows
        ],
    )


def set_cluster(connection: Connection, hosts: Iterable[str], cluster: str | None) -> None:
    """Flag hosts as members of a spam cluster (or clear the flag with None)."""
    params = [{"key_host": host, "new_cluster": cluster} for host in hosts]
    if params:
        connection.execute(
            update(servers)
            .where(servers.c.host == bindparam("key_host"))
            .values(cluster=bindparam("new_cluster")),
            params,
        )


def interrupted_crawl_start(engine: Engine, current_run: int) -> datetime | None:
    """When the last crawl before this one started, if it was cut short (killed, stopped).

    Servers it checked since then are not checked again: a resumed crawl fetches
    only what was in flight when the last one ended.
    """
    query = (
        select(runs.c.started_at, runs.c.status)
        .where(runs.c.collector == "crawl", runs.c.id < current_run)
        .order_by(runs.c.id.desc())
        .limit(1)
    )
    with engine.connect() as connection:
        row = connection.execute(query).first()
    if row is None or row.status not in ("interrupted", "running"):
        return None
    started: datetime = row.started_at
    return started


def _complete(row: Mapping[str, Any]) -> dict[str, Any]:
    full = dict.fromkeys(COLUMNS)
    full.update(row)
    if full["failures"] is None:
        full["failures"] = 0
    return full


def clustered_series(engine: Engine, source: str) -> frozenset[int]:
    """Ids of this source's series whose server is flagged as part of a spam cluster.

    One join in SQL (a few ids come back, never the servers table); a database
    without the `servers` table (no crawl, or not upgraded) has none.
    """
    if not inspect(engine).has_table(servers.name):
        return frozenset()
    query = (
        select(series.c.id)
        .select_from(series.join(servers, servers.c.host == series.c.target))
        .where(series.c.source == source, servers.c.cluster.is_not(None))
    )
    with engine.connect() as connection:
        return frozenset(int(row) for row in connection.execute(query).scalars())
