"""Archive files to readings: pure functions, text in, readings or line-numbered rejections out.

Every bad row of a file is found in one pass and reported together with its line
number, so a user fixes a file once instead of once per row. A file with any bad row
yields nothing at all (`BadFile`): an archive half-imported would look like a real
gap or a real step in the history.

Refused: an unreadable time, a time before 2016 (before any of these networks
counted anyone; usually milliseconds read as seconds the other way round) or after
`now` (milliseconds as seconds), a count that `tracker.sanity.check_count` refuses
(negative, fractional, text, absurd) or an empty one, a row of the wrong width, and
two rows at one time with different counts (which one is true cannot be told). Two
rows at one time with the same counts are one reading: the Bluesky hourly archive
repeats rows when its scraper saw no update.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tracker.history.archives import ARCHIVES, Archive
from tracker.history.formats import CsvFormat, Format, JsonPointsFormat
from tracker.instants import iso_z
from tracker.sanity import MISSING, Rejection, check_count

EARLIEST = datetime(2016, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Reading:
    line: int
    observed_at: datetime
    metric: str
    value: int


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str


class BadFile(Exception):
    """The file is refused; `rejected` holds every bad row (or the one file-level reason)."""

    def __init__(self, rejected: Sequence[Rejected]) -> None:
        super().__init__(summarise(rejected))
        self.rejected = list(rejected)


def summarise(rejected: Sequence[Rejected], shown: int = 3, listed: int = 10) -> str:
    """One line: the count, the first few rows with their reasons, the next line numbers."""
    count = len(rejected)
    text = f"{count} bad row{'s' if count != 1 else ''}: " + "; ".join(
        f"line {item.line}: {item.reason}" for item in rejected[:shown]
    )
    more = rejected[shown:]
    if more:
        lines = ", ".join(str(item.line) for item in more[:listed])
        text += f"; and {len(more)} more (lines {lines}{', ...' if len(more) > listed else ''})"
    return " ".join(text.split())  # a value with a line break must not break the line


@dataclass
class Parsed:
    readings: list[Reading] = field(default_factory=list)
    rows: int = 0
    """Data rows read (a repeated row included)."""
    repeated: int = 0
    """Rows identical to an earlier row at the same time, read once."""
    left_out: int = 0
    """Readings the format says were not measured (`CsvFormat.zero_is_missing`)."""


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadFile([Rejected(_line_at(data, exc.start), "not UTF-8 text")]) from None


def _line_at(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def detect(text: str) -> Archive:
    """The archive whose format this text has: its CSV header, or its JSON items' keys."""
    start = text.lstrip()
    if start.startswith("["):
        keys = _first_keys(text)
        for archive in ARCHIVES.values():
            if isinstance(archive.format, JsonPointsFormat) and keys == archive.format.keys:
                return archive
        shown = ",".join(sorted(keys)) if keys is not None else "none"
        raise BadFile([Rejected(1, f"a JSON array whose first item has keys {shown}: {_known()}")])
    first = text.splitlines()[0] if text else ""
    header = tuple(name.strip() for name in first.split(","))
    for archive in ARCHIVES.values():
        if isinstance(archive.format, CsvFormat) and header == archive.format.header:
            return archive
    raise BadFile(
        [Rejected(1, f"header {first[:120]!r} is not one of the known archives' ({_known()})")]
    )


def _known() -> str:
    return "see `tracker history list`"


def _first_keys(text: str) -> frozenset[str] | None:
    try:
        for _line, item in _json_items(text):
            return frozenset(item) if isinstance(item, dict) else None
    except BadFile:
        return None
    return None


def parse(fmt: Format, text: str, now: datetime) -> Parsed:
    """Every reading of the file, or `BadFile` naming every bad row."""
    rows = _Rows(now)
    if isinstance(fmt, CsvFormat):
        _read_csv(fmt, text, rows)
    else:
        _read_json(fmt, text, rows)
    if rows.rejected:
        raise BadFile(rows.rejected)
    if not rows.parsed.rows:
        raise BadFile([Rejected(1, "no data rows")])
    return rows.parsed


class _Rows:
    """Checks rows one by one, keeping the good readings and every rejection."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.parsed = Parsed()
        self.rejected: list[Rejected] = []
        self.seen: dict[datetime, tuple[int, tuple[Any, ...]]] = {}

    def add(
        self,
        line: int,
        time_text: str,
        read_time: Any,
        counts: Sequence[tuple[str, str, Any, bool]],
    ) -> None:
        """One row: its time, and (column, metric, raw value, zero is missing) per count."""
        self.parsed.rows += 1
        problems: list[str] = []
        try:
            moment: datetime | None = read_time(time_text)
        except (ValueError, OverflowError, OSError) as exc:
            problems.append(f"time {time_text!r}: {exc}")
            moment = None
        if moment is not None and moment < EARLIEST:
            problems.append(f"time {time_text!r} is before {EARLIEST:%Y-%m-%d}")
        if moment is not None and moment > self.now:
            problems.append(
                f"time {time_text!r} is in the future (now {iso_z(self.now, timespec='minutes')})"
            )
        readings: list[Reading] = []
        left_out = 0
        for column, metric, raw, zero_missing in counts:
            value = MISSING if raw == "" else check_count(metric, raw)
            if isinstance(value, Rejection):
                problems.append(f"{column} {value.raw!r}: {value.reason}")
            elif not isinstance(value, int):
                problems.append(f"{column} is empty")
            elif value == 0 and zero_missing:
                left_out += 1
            elif moment is not None:
                readings.append(Reading(line, moment, metric, value))
        if moment is not None and not problems:
            key = tuple(raw for _column, _metric, raw, _zero in counts)
            earlier = self.seen.get(moment)
            if earlier is not None and earlier[1] != key:
                problems.append(f"same time as line {earlier[0]} with other counts")
            elif earlier is not None:
                self.parsed.repeated += 1
                return
            self.seen[moment] = (line, key)
        if problems:
            self.rejected.append(Rejected(line, "; ".join(problems)))
            return
        self.parsed.readings.extend(readings)
        self.parsed.left_out += left_out


def _read_csv(fmt: CsvFormat, text: str, rows: _Rows) -> None:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None or tuple(name.strip() for name in header) != fmt.header:
            raise BadFile([Rejected(1, f"header must be {','.join(fmt.header)}")])
        width = len(fmt.header)
        where = {name: index for index, name in enumerate(fmt.header)}
        for record in reader:
            line = reader.line_num
            if not record or record == [""]:
                continue  # a blank line (often the last) holds no row
            if len(record) != width:
                rows.parsed.rows += 1
                rows.rejected.append(Rejected(line, f"{len(record)} fields, not {width}"))
                continue
            counts = [
                (column, metric, record[where[column]].strip(), column in fmt.zero_is_missing)
                for column, metric in fmt.metrics
            ]
            rows.add(line, record[where[fmt.time_column]].strip(), fmt.read_time, counts)
    except csv.Error as exc:
        raise BadFile(
            [*rows.rejected, Rejected(reader.line_num, f"malformed CSV: {exc}")]
        ) from None


def _read_json(fmt: JsonPointsFormat, text: str, rows: _Rows) -> None:
    for line, item in _json_items(text):
        if not isinstance(item, dict) or set(item) != fmt.keys:
            rows.parsed.rows += 1
            keys = ",".join(sorted(item)) if isinstance(item, dict) else type(item).__name__
            rows.rejected.append(
                Rejected(line, f"expected keys {fmt.time_key},{fmt.value_key}, got {keys}")
            )
            continue
        moment = item[fmt.time_key]
        if not isinstance(moment, str):
            moment = repr(moment)
        counts = [(fmt.value_key, fmt.metric, item[fmt.value_key], False)]
        rows.add(line, moment, fmt.read_time, counts)


def _json_items(text: str) -> Iterator[tuple[int, Any]]:
    """The items of a top-level JSON array, each with the line it starts on.

    `json.loads` gives no positions, and a rejection without a line number would
    make a user search a long file by hand.
    """
    decoder = json.JSONDecoder()
    position, line = 0, 1

    def skip(at: int) -> int:
        while at < len(text) and text[at] in " \t\r\n":
            at += 1
        return at

    def line_of(at: int) -> int:
        nonlocal position, line
        line += text.count("\n", position, at)
        position = at
        return line

    at = skip(0)
    if not text.startswith("[", at):
        raise BadFile([Rejected(line_of(at), "not a JSON array")])
    at = skip(at + 1)
    if text.startswith("]", at):
        return
    while True:
        try:
            item, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError as exc:
            raise BadFile([Rejected(exc.lineno, f"not JSON: {exc.msg}")]) from None
        yield line_of(at), item
        at = skip(end)
        if text.startswith(",", at):
            at = skip(at + 1)
        elif text.startswith("]", at):
            break
        else:
            raise BadFile([Rejected(line_of(at), "not JSON: expected ',' or ']'")])
    if skip(at + 1) != len(text):
        raise BadFile([Rejected(line_of(skip(at + 1)), "not JSON: text after the array")])
