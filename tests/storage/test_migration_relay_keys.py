"""Revision 0003 re-keys the bluesky series a relay wrote (issue 10, item 4).

A database is built at revision 0001 holding what the old collector stored: relay
totals and per-host readings under plain host keys, mixed with PDS enumerations of
the same keys. The upgrade must move each point to the target of what wrote it,
from the runs, attempts and fetch log alone, and never guess.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Connection, Engine, select

from tracker.storage.engine import (
    _alembic_config,
    current_revision,
    head_revision,
    open_database,
    upgrade_schema,
    write_transaction,
)
from tracker.storage.schema import UtcDateTime, attempts, points, runs, series

S1, S2, S3, S4 = (int(datetime(2025, 1, day, 6, tzinfo=UTC).timestamp()) for day in (1, 2, 3, 4))
Row = tuple[str, str, int, int, int | None]  # target, metric, observed_at, value, run

OLD_PAYLOADS = sa.table(
    "payloads",
    sa.column("sha256"),
    sa.column("size"),
    sa.column("codec"),
    sa.column("body", sa.LargeBinary()),
    sa.column("first_seen", UtcDateTime()),
)
OLD_FETCHES = sa.table(
    "fetches",
    *(
        sa.column(name)
        for name in ("attempt_id", "seq", "kind", "method", "url", "status", "elapsed_ms")
    ),
    *(sa.column(name) for name in ("bytes", "attempts", "payload_sha256")),
    sa.column("fetched_at", UtcDateTime()),
)
"""The two tables as revision 0001 made them (the schema module has today's)."""


def at(second: int) -> datetime:
    return datetime.fromtimestamp(second, UTC)


class OldDatabase:
    """Rows as the collector before revision 0003 wrote them."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.series: dict[tuple[str, str], int] = {}

    def run(self, run_id: int, second: int) -> int:
        self.connection.execute(
            runs.insert().values(
                id=run_id,
                collector="bluesky",
                started_at=at(second),
                status="ok",
                targets_ok=0,
                targets_failed=0,
                targets_skipped=0,
                observations_written=0,
            )
        )
        return run_id

    def attempt(
        self,
        run_id: int,
        target: str,
        second: int,
        *,
        hosts: dict[str, int] | None = None,
        archived: bool = True,
        outcome: str = "ok",
    ) -> int:
        """A relay attempt when `hosts` is given (its listHosts page), else a PDS one."""
        inserted = self.connection.execute(
            attempts.insert().values(
                run_id=run_id,
                source="bluesky",
                target=target,
                outcome=outcome,
                platform="bluesky",
                started_at=at(second),
                observations=0,
            )
        )
        key = inserted.inserted_primary_key
        assert key is not None
        attempt_id = int(key[0])
        if hosts is None:
            self._fetch(attempt_id, 0, "describeServer", second, None)
            self._fetch(attempt_id, 1, "listRepos", second, None)
        else:
            page = {
                "hosts": [
                    {"hostname": name, "accountCount": count, "status": "active"}
                    for name, count in hosts.items()
                ]
            }
            body = json.dumps(page).encode()
            self._fetch(attempt_id, 0, "listHosts", second, body if archived else b"", len(body))
            self._fetch(attempt_id, 1, "listHosts", second, b'{"hosts": []}')
        return attempt_id

    def _fetch(
        self,
        attempt_id: int,
        seq: int,
        kind: str,
        second: int,
        body: bytes | None,
        size: int | None = None,
    ) -> None:
        digest = None
        if body:
            digest = f"{attempt_id:032d}{seq:032d}"
            self.connection.execute(
                OLD_PAYLOADS.insert().values(
                    sha256=digest,
                    size=len(body),
                    codec="zlib",
                    body=zlib.compress(body),
                    first_seen=at(second),
                )
            )
        self.connection.execute(
            OLD_FETCHES.insert().values(
                attempt_id=attempt_id,
                seq=seq,
                kind=kind,
                method="GET",
                url=f"https://x/{kind}",
                status=200,
                elapsed_ms=1,
                bytes=size if size is not None else len(body or b""),
                attempts=1,
                fetched_at=at(second),
                payload_sha256=digest,
            )
        )

    def point(self, target: str, metric: str, second: int, value: int, run: int | None) -> Row:
        series_id = self.series.get((target, metric))
        if series_id is None:
            inserted = self.connection.execute(
                series.insert().values(
                    source="bluesky", platform="bluesky", target=target, metric=metric, period=""
                )
            )
            key = inserted.inserted_primary_key
            assert key is not None
            series_id = self.series[(target, metric)] = int(key[0])
        self.connection.execute(
            points.insert().values(
                series_id=series_id, observed_at=at(second), value=value, run_id=run
            )
        )
        return (target, metric, second, value, run)


def stored(engine: Engine) -> set[Row]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                series.c.target,
                series.c.metric,
                points.c.observed_at,
                points.c.value,
                points.c.run_id,
            ).join(points, points.c.series_id == series.c.id)
        )
        return {
            (target, metric, int(moment.timestamp()), value, run)
            for target, metric, moment, value, run in rows
        }


def migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    with write_transaction(engine) as connection:
        config = _alembic_config()
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


@pytest.fixture(params=["sqlite", "postgresql"])
def old_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tracker.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = open_database(url, upgrade=False)
    migrate(engine, "0001")
    yield engine
    engine.dispose()


def write_old_history(engine: Engine) -> set[Row]:
    """Write the old rows; returns what revision 0003 must make of them."""
    relay_total = "relay:both.example"
    with write_transaction(engine) as connection:
        old = OldDatabase(connection)
        expected: set[Row] = set()

        def keep(row: Row, target: str | None = None) -> None:
            expected.add(row if target is None else (target, *row[1:]))

        # Run 1, every attempt in one second: both.example is a relay and a PDS, and the
        # relay lists pds.one, which is enumerated too. Written in attempt order.
        run = old.run(1, S1)
        old.attempt(run, "both.example", S1)  # its PDS count (7) was overwritten...
        old.attempt(run, "both.example", S1, hosts={"pds.one": 50, "other.host": 4})
        old.attempt(run, "pds.one", S1)  # ...while this PDS overwrote the relay's 50
        keep(old.point("both.example", "users_total", S1, 54, run), relay_total)
        keep(old.point("both.example", "servers_total", S1, 2, run), relay_total)
        keep(old.point("both.example", "users_active", S1, 7, run))
        keep(old.point("both.example", "registrations_open", S1, 0, run))
        keep(old.point("pds.one", "users_total", S1, 3, run))
        keep(old.point("other.host", "users_total", S1, 4, run), f"{relay_total}/other.host")

        # Run 2, one second apart: pds.one's series holds a relay reading and a PDS count.
        run = old.run(2, S2)
        old.attempt(run, "both.example", S2, hosts={"pds.one": 51, "other.host": 5})
        old.attempt(run, "pds.one", S2 + 1)
        keep(old.point("both.example", "users_total", S2, 56, run), relay_total)
        keep(old.point("both.example", "servers_total", S2, 2, run), relay_total)
        keep(old.point("pds.one", "users_total", S2, 51, run), f"{relay_total}/pds.one")
        keep(old.point("pds.one", "users_total", S2 + 1, 3, run))
        keep(old.point("other.host", "users_total", S2, 5, run), f"{relay_total}/other.host")

        # Run 3: two relays in one second list one host; their archived pages tell.
        run = old.run(3, S3)
        old.attempt(run, "r1.example", S3, hosts={"shared.host": 10, "only.one": 1})
        old.attempt(run, "r2.example", S3, hosts={"shared.host": 11})
        keep(old.point("shared.host", "users_total", S3, 11, run), "relay:r2.example/shared.host")
        keep(old.point("only.one", "users_total", S3, 1, run), "relay:r1.example/only.one")
        keep(old.point("r1.example", "users_total", S3, 11, run), "relay:r1.example")
        keep(old.point("r1.example", "servers_total", S3, 2, run), "relay:r1.example")
        keep(old.point("r2.example", "users_total", S3, 11, run), "relay:r2.example")
        keep(old.point("r2.example", "servers_total", S3, 1, run), "relay:r2.example")

        # Run 4: the same, but the later relay's pages were pruned: no guess is made.
        run = old.run(4, S4)
        old.attempt(run, "r1.example", S4, hosts={"shared.host": 12})
        old.attempt(run, "r2.example", S4, hosts={"shared.host": 13}, archived=False)
        keep(old.point("shared.host", "users_total", S4, 13, run), "unattributed:shared.host")

        # An imported reading belongs to no run.
        keep(old.point("imported.host", "users_total", S4, 9, None), "unattributed:imported.host")
        # A PDS that failed (later, in the same second) stored no users_total.
        old.attempt(run, "r3.example", S4 + 5, hosts={"lonely.host": 2})
        old.attempt(run, "lonely.host", S4 + 5, outcome="failed")
        keep(
            old.point("lonely.host", "users_total", S4 + 5, 2, run), "relay:r3.example/lonely.host"
        )
        return expected


def test_relay_readings_move_to_their_own_targets(old_engine: Engine) -> None:
    expected = write_old_history(old_engine)
    before = stored(old_engine)
    assert len(before) == len(expected)
    assert upgrade_schema(old_engine)
    assert current_revision(old_engine) == head_revision()
    assert stored(old_engine) == expected
    with old_engine.connect() as connection:  # emptied series are gone, none is duplicated
        keys = connection.execute(select(series.c.target, series.c.metric)).all()
    assert len(keys) == len(set(keys)) == len({(t, m) for t, m, *_ in expected})

    migrate(old_engine, "0001", down=True)
    assert stored(old_engine) == before


def test_a_database_without_bluesky_rows_is_untouched(old_engine: Engine) -> None:
    assert upgrade_schema(old_engine)
    assert stored(old_engine) == set()
