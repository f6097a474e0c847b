"""The `plc` collector's database work: its cursor, one transaction per page, the rebuild.

The PLC export is paged across runs from a stored cursor, each page committed
with its counts, so the collector writes its pages itself as it goes; it does so
through `PlcPages`, which holds the database and keeps every query and
transaction here, as all SQL is under `storage/`.

Each page is one transaction: its attempt (fetch log, archived body, rejected
lines), its counts added to the day totals (`accounts_created` per family,
period `day`), and the cursor moved compare-and-set from the one the page was
fetched from (tracker/storage/collector_state.py). A SIGKILL therefore loses at
most the page in flight, which the next run fetches again; nothing is counted
twice. `rebuild` recounts every archived page in one transaction
(`tracker plc rebuild`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, date, datetime
from datetime import time as day_start

from sqlalchemy import Connection, Engine, func, select, update

from tracker.config import PlcSettings
from tracker.model import TargetResult
from tracker.parsers import plc as p
from tracker.storage.collector_state import add_to_points, delete_state, read_state, swap_state
from tracker.storage.engine import write_transaction
from tracker.storage.payload_archive import PayloadReader, decoded_bodies
from tracker.storage.points import SeriesIds
from tracker.storage.schema import attempts, fetches, payloads, points, runs, series
from tracker.storage.store import Store

SOURCE = "plc"
"""The collector whose series, attempts and state these are."""
CURSOR_KEY = "export_cursor"
"""One cursor per database: a mirror of the directory continues where the last one stopped."""


class PlcPages:
    """The `plc` collector's hold on the database, for one run's paging.

    The collector reads the cursor, then hands each page over to `commit_page`; it
    never sees a connection. Built on the engine of the run's History.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._store = Store(engine)

    def cursor(self) -> str | None:
        """The stored export cursor, as text (None: paging has not started)."""
        return read_state(self._engine, SOURCE, CURSOR_KEY)

    def has_counts(self) -> bool:
        """Whether any day total is stored."""
        return has_points(self._engine, SOURCE)

    def running_run(self, pid: int) -> int | None:
        """The `plc` run process `pid` has open (the runner opened it; pages join it)."""
        return running_run(self._engine, SOURCE, pid)

    def commit_page(
        self,
        run_id: int,
        result: TargetResult,
        page: p.Page,
        fetched_from: str | None,
        fetched_at: datetime,
    ) -> None:
        """One page, in one transaction: its attempt and archived body (`result`), its
        counts added to the day totals, and the cursor moved from `fetched_from` (the
        stored cursor the page was asked with) to the page's; CursorMoved if the stored
        one is no longer `fetched_from`, and then nothing is written."""
        counts = _by_midnight(page.counts)

        def also(connection: Connection) -> None:
            touched = add_to_points(
                connection,
                self._store.series_ids,
                source=SOURCE,
                platform=p.PLATFORM,
                metric=p.METRIC,
                period="day",
                counts=counts,
            )
            swap_state(
                connection, SOURCE, CURSOR_KEY, fetched_from, page.cursor.dumps(), fetched_at
            )
            set_newest_attempt_observations(connection, run_id, SOURCE, touched)

        self._store.write_target(run_id, result, also)


def rebuild(engine: Engine, settings: PlcSettings) -> int:
    """Recount every archived page in order, replacing the day totals and the cursor.

    For a fix to the counting (or new family rules): the pages are read back from
    the payload archive oldest first and counted again as if fetched now, in one
    transaction. Returns the pages read; raises if any page's body was pruned
    (then nothing is changed: collect the export again from an empty cursor).
    """
    reader = PayloadReader()
    with write_transaction(engine) as connection:
        digests = answered_page_digests(connection, SOURCE, p.KIND)
        cursor = p.Cursor()
        totals: Counter[tuple[date, str]] = Counter()
        for digest in digests:
            body = decoded_bodies(reader, connection, {digest}).get(digest) if digest else None
            if body is None:
                raise RuntimeError(f"an archived export page ({digest}) was pruned: cannot rebuild")
            page = p.parse_page(body, cursor, settings.families)
            totals.update(page.counts)
            cursor = page.cursor
        delete_points_of(connection, SOURCE)
        delete_state(connection, SOURCE, CURSOR_KEY)
        add_to_points(
            connection,
            SeriesIds(),
            source=SOURCE,
            platform=p.PLATFORM,
            metric=p.METRIC,
            period="day",
            counts=_by_midnight(totals),
        )
        if digests:
            swap_state(connection, SOURCE, CURSOR_KEY, None, cursor.dumps(), datetime.now(UTC))
    return len(digests)


def _by_midnight(counts: Mapping[tuple[date, str], int]) -> dict[tuple[str, datetime], int]:
    """Counts by (day, family) as point keys: (family as target, the day's UTC midnight)."""
    return {
        (family, datetime.combine(day, day_start(0), tzinfo=UTC)): n
        for (day, family), n in counts.items()
    }


def has_points(engine: Engine, source: str) -> bool:
    """Whether any series of this source holds a point."""
    query = (
        select(points.c.series_id)
        .join(series, series.c.id == points.c.series_id)
        .where(series.c.source == source)
        .limit(1)
    )
    with engine.connect() as connection:
        return connection.execute(query).first() is not None


def running_run(engine: Engine, collector: str, pid: int) -> int | None:
    """The newest run of this collector that process `pid` has open, if any."""
    query = (
        select(runs.c.id)
        .where(runs.c.collector == collector, runs.c.status == "running", runs.c.pid == pid)
        .order_by(runs.c.id.desc())
        .limit(1)
    )
    with engine.connect() as connection:
        run_id = connection.execute(query).scalar()
    return None if run_id is None else int(run_id)


def set_newest_attempt_observations(
    connection: Connection, run_id: int, source: str, observations: int
) -> None:
    """The observation count of the run's newest attempt of `source` (the one just
    inserted in this transaction: pages are written one by one)."""
    newest = select(func.max(attempts.c.id)).where(
        attempts.c.run_id == run_id, attempts.c.source == source
    )
    connection.execute(
        update(attempts)
        .where(attempts.c.id == newest.scalar_subquery())
        .values(observations=observations)
    )


def answered_page_digests(connection: Connection, source: str, kind: str) -> list[str | None]:
    """The archived bodies of every good answer of this kind, in the order fetched
    (None where a fetch has no body stored)."""
    query = (
        select(payloads.c.sha256)
        .select_from(fetches)
        .join(attempts, attempts.c.id == fetches.c.attempt_id)
        .outerjoin(payloads, payloads.c.id == fetches.c.payload_id)
        .where(
            attempts.c.source == source,
            fetches.c.kind == kind,
            fetches.c.status == 200,
            fetches.c.error_kind.is_(None),
        )
        .order_by(attempts.c.started_at, attempts.c.id, fetches.c.seq)
    )
    return list(connection.execute(query).scalars())


def delete_points_of(connection: Connection, source: str) -> None:
    """Every point of every series of this source (the series themselves stay)."""
    of_source = select(series.c.id).where(series.c.source == source)
    connection.execute(points.delete().where(points.c.series_id.in_(of_source)))
