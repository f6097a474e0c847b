"""Peak memory while refusing a decompression bomb: it must stay near `http.max_bytes`.

A loopback server answers with about 400 KB of gzip that inflates to 400 MB; the
session is capped at 1 MB. Prints the process's resident set before and its peak
after (the peak of the whole process, so the figure includes the interpreter).

    .venv/bin/python bench/bomb.py [--inflated-mb 400] [--max-bytes 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import zlib
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.loopback import Loopback, Reply
from tracker.config import HttpSettings
from tracker.http.session import HttpContext, TargetSession


def rss_mb() -> float:
    with Path("/proc/self/status").open() as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def gzip_of_zeros(megabytes: int) -> bytes:
    """Built a megabyte at a time, so making the bomb does not raise the peak itself."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1_000_000)
    parts = [packer.compress(zeros) for _ in range(megabytes)]
    return b"".join([*parts, packer.flush()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inflated-mb", type=int, default=400)
    parser.add_argument("--max-bytes", type=int, default=1_000_000)
    args = parser.parse_args()
    bomb = gzip_of_zeros(args.inflated_mb)
    loopback = Loopback()
    site = loopback.add({"*": Reply(200, bomb, headers={"Content-Encoding": "gzip"})})
    settings = HttpSettings(allow_hosts=("127.0.0.1",), retries=0, max_bytes=args.max_bytes)
    context = HttpContext(settings, "tracker/bench", lambda: datetime.now(UTC))

    async def fetch() -> str | None:
        async with TargetSession(context, site.url) as session:
            return (await session.fetch("bomb", "/bomb")).error_kind

    before = rss_mb()
    kind = asyncio.run(fetch())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    loopback.close()
    print(
        f"gzip body {len(bomb):,} bytes inflating to {args.inflated_mb} MB, "
        f"max_bytes {args.max_bytes:,}: {kind}; RSS before {before:.0f} MB, "
        f"peak {peak:.0f} MB (+{peak - before:.0f} MB)"
    )


if __name__ == "__main__":
    main()
