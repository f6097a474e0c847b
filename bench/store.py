"""Bulk upsert speed of the storage layer (SQLAlchemy Core + the driver's executemany).

    .venv/bin/python bench/store.py [--rows 1000000] [--targets 2000]

Upserts N observations into a fresh SQLite file in one transaction, as
`tracker import` does, then upserts the same N again (all updates), and prints
rows/s for both and the file size. The rows come in the order collections
produce them (time-major: every series at one time, then the next time), the
harder order for the B-tree. Target: at least 100k rows/s.

Then writes T collected targets (a Mastodon server's 39 observations and 6
archived responses each) as a collection does, one commit per target, and for
comparison 64 targets per commit, as the runner did before: the price of a
crash losing only the targets in flight.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracker.model import Fetched, Observation, Parsed, TargetResult
from tracker.storage.engine import open_database, write_transaction
from tracker.storage.points import SeriesIds, upsert_rows
from tracker.storage.store import Store

METRICS = ("users_total", "users_active_month", "posts_total", "peers_total")


def rows(count: int, value_offset: int) -> Iterator[tuple[bool, dict[str, Any]]]:
    """Realistic keys: 500 servers x 4 metrics x 6-hourly readings."""
    start = datetime(2022, 1, 1, tzinfo=UTC)
    per_reading = 500 * len(METRICS)
    for index in range(count):
        reading, rest = divmod(index, per_reading)
        server, metric = divmod(rest, len(METRICS))
        yield (
            True,
            {
                "source": "fediverse",
                "platform": "mastodon",
                "target": f"server{server}.example",
                "metric": METRICS[metric],
                "period": "",
                "observed_at": start + timedelta(hours=6 * reading),
                "value": index + value_offset,
                "run_id": None,
            },
        )


def load(url: str, count: int, value_offset: int) -> float:
    engine = open_database(url)
    prepared = list(rows(count, value_offset))  # built first: this measures storage only
    started = time.perf_counter()
    with write_transaction(engine) as connection:
        upsert_rows(connection, prepared, SeriesIds())
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def target_result(index: int, at: datetime) -> TargetResult:
    """One collected Mastodon server: 6 readings, 33 weekly buckets, 6 responses."""
    host = f"server{index}.example"
    readings = [Observation("mastodon", host, f"metric{m}", index + m, at) for m in range(6)]
    weeks = [
        Observation("mastodon", host, f"weekly{m % 3}", index + w, at - timedelta(weeks=w), "week")
        for w in range(11)
        for m in range(3)
    ]
    fetched = [
        Fetched(
            f"kind{k}", f"http://{host}/path{k}", at, status=200, body=f"{host} {k} ".encode() * 100
        )
        for k in range(6)
    ]
    parsed = Parsed(observations=readings + weeks, platform="mastodon")
    return TargetResult("fediverse", host, "ok", at, fetched, parsed)


def write_collection(url: str, count: int, per_commit: int) -> float:
    """Seconds to write `count` targets into a fresh file, `per_commit` per transaction."""
    engine = open_database(url)
    store = Store(engine)
    at = datetime(2022, 11, 9, tzinfo=UTC)
    run_id = store.start_run("fediverse", at)
    results = [target_result(index, at) for index in range(count)]
    started = time.perf_counter()
    for first in range(0, count, per_commit):
        store.write_targets(run_id, results[first : first + per_commit])
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def bench_targets(count: int) -> None:
    for per_commit, how in ((1, "one commit per target"), (64, "64 targets per commit")):
        with tempfile.TemporaryDirectory(prefix="tracker-store-") as tmp:
            elapsed = write_collection(f"sqlite:///{Path(tmp) / 'bench.db'}", count, per_commit)
        print(
            f"write {count:,} collected targets, {how}: {elapsed:.1f} s, "
            f"{count / elapsed:,.0f} targets/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--targets", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tracker-store-") as tmp:
        path = Path(tmp) / "bench.db"
        url = f"sqlite:///{path}"
        first = load(url, args.rows, 0)
        second = load(url, args.rows, 1)
        size = sum(p.stat().st_size for p in Path(tmp).glob("bench.db*"))
    print(f"insert {args.rows:,} new observations: {first:.1f} s, {args.rows / first:,.0f} rows/s")
    print(
        f"upsert the same {args.rows:,} again (updates): {second:.1f} s, "
        f"{args.rows / second:,.0f} rows/s"
    )
    print(f"file size: {size / 1e6:.0f} MB ({size / args.rows:.0f} bytes per observation)")
    print(f"target >= 100,000 rows/s: {'met' if args.rows / first >= 100_000 else 'MISSED'}")
    bench_targets(args.targets)


if __name__ == "__main__":
    main()
