"""The file formats of the archives, as data: a header (or JSON keys) and how to read a row.

One format per archive, recognised by its exact header (CSV) or its items' keys
(JSON), so a user never has to say which file is which and a file cannot be
imported as the wrong archive. Times are read strictly (an unexpected shape is a
rejected row, never a guessed instant); every archive records UTC.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

TimeReader = Callable[[str], datetime]


def unix_seconds(text: str) -> datetime:
    if not re.fullmatch(r"[0-9]{1,12}", text):
        raise ValueError("not Unix seconds")
    return datetime.fromtimestamp(int(text), UTC)


def _strict(pattern: str, shape: str, layout: str) -> TimeReader:
    """A reader of one exact layout: `strptime` alone accepts `2022-1-5` and more."""
    compiled = re.compile(pattern)

    def read(text: str) -> datetime:
        if not compiled.fullmatch(text):
            raise ValueError(f"not a {shape}")
        return datetime.strptime(text, layout).replace(tzinfo=UTC)

    return read


iso_day = _strict(r"\d{4}-\d{2}-\d{2}", "YYYY-MM-DD date", "%Y-%m-%d")
iso_minute = _strict(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", "YYYY-MM-DD HH:MM time", "%Y-%m-%d %H:%M")
iso_second = _strict(
    r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", "YYYY-MM-DD HH:MM:SS time", "%Y-%m-%d %H:%M:%S"
)

_ISO_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")


def iso_instant(text: str) -> datetime:
    """ISO 8601 with a zone (`2023-05-08T19:49:52.000Z`); fractions are dropped, as the
    database keeps whole seconds."""
    if not _ISO_Z.fullmatch(text):
        raise ValueError("not an ISO 8601 time with a zone")
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class CsvFormat:
    """A CSV with exactly `header`: one time column and count columns.

    `zero_is_missing`: columns where 0 is the tracker failing to measure, not a
    count (the @mastodonusercount bot wrote 0 instances for hours when its list
    of instances failed to load, while its user count stood still); such a reading
    is left out, not stored as a crash to zero, and the import says how many.
    """

    header: tuple[str, ...]
    time_column: str
    read_time: TimeReader
    metrics: tuple[tuple[str, str], ...]
    """(column, metric) pairs."""
    zero_is_missing: frozenset[str] = frozenset()

    def describe(self) -> str:
        return f"CSV with the header `{','.join(self.header)}`"


@dataclass(frozen=True)
class JsonPointsFormat:
    """A JSON array of objects with exactly the keys `time_key` and `value_key`."""

    time_key: str
    value_key: str
    read_time: TimeReader
    metric: str

    @property
    def keys(self) -> frozenset[str]:
        return frozenset((self.time_key, self.value_key))

    def describe(self) -> str:
        return f'JSON array of `{{"{self.time_key}": ..., "{self.value_key}": ...}}`'


Format = CsvFormat | JsonPointsFormat
