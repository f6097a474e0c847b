"""`tracker report` on a big database, against one SQL GROUP BY of the same data.

    .venv/bin/python bench/report.py [--targets 5000] [--days 2000] [--keep DIR]

Builds a database of targets x days observations (default 10M: 5,000 fediverse
servers, one reading a day for 2,000 days, with the dropouts and re-indexing steps
real trackers have), runs the real `tracker report` on it as a subprocess, then
times one SQL GROUP BY computing the daily network total per source, platform and
metric. Prints wall time and peak RSS of the report and the GROUP BY's time.
Targets: report at most 3x the GROUP BY's time, peak RSS under 1 GB. The database is
cached in --keep DIR (default: a temp folder) so a re-run skips the 1-2 minute build.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
START = 1_640_995_200 + 6 * 3600  # 2022-01-01 06:00 UTC
PLATFORMS = ("mastodon", "misskey", "lemmy")

GROUP_BY = """
SELECT s.source, s.platform, s.metric, p.observed_at / 86400 AS day,
       SUM(p.value) AS total, COUNT(*) AS targets
FROM points AS p JOIN series AS s ON s.id = p.series_id
WHERE s.period = ''
GROUP BY s.source, s.platform, s.metric, day
"""


def build(path: Path, targets: int, days: int) -> None:
    config = path.parent / "config.yaml"
    config.write_text(
        yaml.safe_dump({"database": f"sqlite:///{path.name}", "contact": "https://e.org/b"})
    )
    subprocess.run(
        [sys.executable, "-m", "tracker", "db", "upgrade", "--config", str(config)], check=True
    )
    rng = np.random.default_rng(7)
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")
    db.executemany(
        "INSERT INTO series (id, source, platform, target, metric, period)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (i + 1, "fediverse", PLATFORMS[i % 3], f"server{i}.example", "users_total", "")
            for i in range(targets)
        ],
    )
    times = START + 86_400 * np.arange(days, dtype=np.int64)
    for first in range(0, targets, 100):
        rows = []
        for index in range(first, min(first + 100, targets)):
            base = int(rng.integers(100, 200_000))
            values = base + np.cumsum(rng.integers(0, max(2, base // 500), days))
            drops = rng.random(days) < 0.002  # a missed crawl now and then
            values[drops] = values[drops] // 3
            if index % 50 == 0:  # a re-index on some servers
                values[days // 2 :] += base // 2
            rows.extend(zip([index + 1] * days, times.tolist(), values.tolist(), strict=True))
        db.executemany(
            "INSERT INTO points (series_id, observed_at, value, run_id) VALUES (?, ?, ?, NULL)",
            rows,
        )
        db.commit()
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--targets", type=int, default=5000)
    parser.add_argument("--days", type=int, default=2000)
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep the database in")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="tracker-report-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"bench-{args.targets}x{args.days}.db"
    if not path.exists():
        started = time.monotonic()
        build(path, args.targets, args.days)
        print(
            f"built {args.targets * args.days:,} observations in {time.monotonic() - started:.0f} s"
        )
    config = folder / "config.yaml"
    config.write_text(
        yaml.safe_dump({"database": f"sqlite:///{path.name}", "contact": "https://e.org/b"})
    )

    started = time.monotonic()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tracker",
            "report",
            "--config",
            str(config),
            "--output",
            str(folder / "report"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    report_seconds = time.monotonic() - started
    errors = (process.stderr.read() if process.stderr else b"").decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"tracker report failed:\n{errors}")

    db = sqlite3.connect(path)
    db.execute("PRAGMA cache_size = -65536")  # what tracker's own connections use
    started = time.monotonic()
    groups = db.execute(GROUP_BY).fetchall()
    group_seconds = time.monotonic() - started
    db.close()

    rss = usage.ru_maxrss * 1024
    print(
        f"database: {args.targets:,} targets x {args.days:,} days"
        f" = {args.targets * args.days:,} observations, "
        f"{path.stat().st_size / 1e6:.0f} MB"
    )
    print(
        f"tracker report: {report_seconds:.1f} s wall, peak RSS {rss / 1e6:.0f} MB "
        f"(target < 1,000 MB: {'met' if rss < 1e9 else 'MISSED'})"
    )
    print(f"SQL GROUP BY daily network total: {group_seconds:.1f} s ({len(groups):,} rows)")
    print(
        f"report / GROUP BY = {report_seconds / group_seconds:.2f}x (target <= 3x: "
        f"{'met' if report_seconds <= 3 * group_seconds else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
