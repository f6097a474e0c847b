"""Importing an archive file: detect its format, parse it whole, write it in one transaction.

Nothing is written unless every row is good (`parse.BadFile` becomes one
`ImportFileError` line naming the bad lines). The `runs` row of an import is
`history:<archive>` with the file's name and sha256, so every point can be traced
to the exact file it came from (`tracker status`, or `points.run_id` in SQL). A
second import of the same file adds nothing and records nothing
(`tracker.storage.history_rows.write_import`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from tracker.clock import system_clock
from tracker.errors import ImportFileError
from tracker.history.archives import Archive
from tracker.history.parse import BadFile, Parsed, decode, detect, parse
from tracker.history.shipped import shipped_bytes
from tracker.storage.history_rows import write_import


@dataclass(frozen=True)
class ImportResult:
    archive: Archive
    label: str
    sha256: str
    parsed: Parsed
    added: int
    run_id: int | None

    def line(self) -> str:
        """One short line for the terminal (and `make run`)."""
        readings = self.parsed.readings
        name = self.archive.name
        if not self.added:
            return f"{name}: added 0 observations (all {len(readings):,} already stored)"
        first = min(reading.observed_at for reading in readings)
        last = max(reading.observed_at for reading in readings)
        text = (
            f"{name}: added {self.added:,} observations from {self.label}, "
            f"{first:%Y-%m-%d}..{last:%Y-%m-%d} (run #{self.run_id})"
        )
        if self.added < len(readings):
            text += f"; {len(readings) - self.added:,} were already stored"
        if self.parsed.left_out:
            text += f"; {self.parsed.left_out:,} zero counts left out as not measured"
        return text


def import_shipped(engine: Engine, archive: Archive, now: datetime) -> ImportResult:
    """The packaged copy of a redistributable archive."""
    return import_bytes(
        engine, archive, shipped_bytes(archive), f"{archive.shipped} (shipped)", now
    )


def import_file(
    engine: Engine, path: Path, now: datetime, archive: Archive | None = None
) -> ImportResult:
    """A file a user downloaded; `archive`, when given, must be the format detected."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read: {exc.strerror}") from None
    return import_bytes(engine, archive, data, path.name, now)


def import_bytes(
    engine: Engine, archive: Archive | None, data: bytes, label: str, now: datetime
) -> ImportResult:
    try:
        text = decode(data)
        detected = detect(text)
        if archive is not None and detected != archive:
            raise ImportFileError(
                f"{label}: this is the {detected.name} archive's format "
                f"({detected.format.describe()}), not {archive.name}'s; nothing imported"
            )
        # A demo clock in the past (`$TRACKER_NOW`) must not make real readings "future":
        # the check is there for milliseconds read as seconds, which land far ahead.
        parsed = parse(detected.format, text, max(now, system_clock()))
    except BadFile as exc:
        raise ImportFileError(f"{label}: nothing imported: {exc}") from None
    sha256 = hashlib.sha256(data).hexdigest()
    message = f"history import of {label}, sha256 {sha256}"
    added, run_id = write_import(engine, detected.collector, message, now, _rows(detected, parsed))
    return ImportResult(detected, label, sha256, parsed, added, run_id)


def _rows(archive: Archive, parsed: Parsed) -> Iterator[dict[str, Any]]:
    for reading in parsed.readings:
        yield {
            "source": archive.source,
            "platform": archive.platform,
            "target": archive.target,
            "metric": reading.metric,
            "period": "",
            "observed_at": reading.observed_at,
            "value": reading.value,
        }
