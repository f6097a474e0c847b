"""`tracker export` and `tracker import`: the CSV/JSON contract with scripts outside.

The CSV header is exactly `source,platform,target,metric,period,observed_at,value`
and `observed_at` is ISO 8601 UTC ending in `Z`; export and import round-trip.
Export streams (a 10M-row database never sits in memory). An import is one
transaction: a bad row rolls back the whole file, so a half-imported file
never mixes with good data.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from tracker.errors import ImportFileError, StorageError
from tracker.instants import iso_z
from tracker.sanity import Rejection, check_count
from tracker.storage.engine import describe, short_reason, write_transaction
from tracker.storage.export import observation_rows
from tracker.storage.filters import Filters
from tracker.storage.points import upsert_rows
from tracker.storage.store import insert_run, set_run_written

COLUMNS = ("source", "platform", "target", "metric", "period", "observed_at", "value")
PERIODS = ("", "day", "week")
_LIMITS = {"source": 32, "platform": 64, "target": 255, "metric": 64}


def export_rows(engine: Engine, filters: Filters) -> Iterator[dict[str, Any]]:
    for item in observation_rows(engine, filters, COLUMNS):
        item["observed_at"] = iso_z(item["observed_at"])
        yield item


def export(engine: Engine, out: TextIO, fmt: str, filters: Filters) -> int:
    """Write observations as CSV or JSON in a stable order; returns the row count."""
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for item in export_rows(engine, filters):
            writer.writerow(item)
            count += 1
        return count
    out.write("[")
    for item in export_rows(engine, filters):
        out.write(",\n" if count else "\n")
        out.write(json.dumps(item, ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def parse_observed_at(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"observed_at {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ValueError(f"observed_at {text!r} has no time zone (write it in UTC with Z)")
    if moment.microsecond:
        raise ValueError(f"observed_at {text!r} has fractions of a second")
    return moment.astimezone(UTC)


def _checked_row(row: dict[str, str | None], run_id: int) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in ("source", "platform", "target", "metric"):
        text = (row.get(name) or "").strip()
        if not text:
            raise ValueError(f"{name} is empty")
        if len(text) > _LIMITS[name]:
            raise ValueError(f"{name} is longer than {_LIMITS[name]} characters")
        values[name] = text
    period = row.get("period") or ""
    if period not in PERIODS:
        raise ValueError(f"period {period!r} is not one of '', day, week")
    values["period"] = period
    values["observed_at"] = parse_observed_at(row.get("observed_at") or "")
    value = check_count(values["metric"], row.get("value"))
    if isinstance(value, Rejection):
        raise ValueError(f"value {value.raw!r}: {value.reason}")
    if not isinstance(value, int):
        raise ValueError("value is empty")
    values["value"] = value
    values["run_id"] = run_id
    return values


def import_csv(engine: Engine, path: Path, now: datetime) -> int:
    """Upsert a CSV in the export format; all or nothing. Returns rows written."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        with handle, write_transaction(engine) as connection:
            reader = csv.DictReader(handle)
            header = tuple(reader.fieldnames or ())
            if header != COLUMNS:
                expected, got = ",".join(COLUMNS), ",".join(header)
                message = f"line 1: header must be exactly {expected} (got {got})"
                raise ImportFileError(f"{path}: {message}")
            run_id = insert_run(
                connection, "import", now, "ok", finished_at=now, message=f"import of {path.name}"
            )

            def rows() -> Iterator[tuple[bool, dict[str, Any]]]:
                for row in reader:
                    if None in row or any(value is None for value in row.values()):
                        raise ImportFileError(
                            f"{path}: line {reader.line_num}: expected {len(COLUMNS)} fields"
                        )
                    try:
                        yield True, _checked_row(row, run_id)
                    except ValueError as exc:
                        raise ImportFileError(f"{path}: line {reader.line_num}: {exc}") from None

            written = upsert_rows(connection, rows())
            set_run_written(connection, run_id, written)
            return written
    except UnicodeDecodeError:
        raise ImportFileError(f"{path}: not UTF-8 text") from None
    except csv.Error as exc:
        raise ImportFileError(f"{path}: malformed CSV: {exc}") from None
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot write to {describe(engine)}: {short_reason(exc)}") from None
