"""Bulk upsert speed of the storage layer (SQLAlchemy Core + the driver's executemany).

    .venv/bin/python bench/store.py [--rows 1000000]

Upserts N observations into a fresh SQLite file in one transaction, as
`tracker import` does, then upserts the same N again (all updates), and prints
rows/s for both and the file size. The rows come in the order collections
produce them (time-major: every series at one time, then the next time), the
harder order for the B-tree. Target: at least 100k rows/s.
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

from tracker.storage.engine import open_database, write_transaction
from tracker.storage.points import SeriesIds, upsert_rows

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
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


if __name__ == "__main__":
    main()
