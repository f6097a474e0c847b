"""The one way an instant becomes text: UTC, ending in `Z`.

Exports, the report, log lines and error messages all name times this way, so
that a reader (or a script) never has to guess the time zone. Callers differ
only in the separator and in how much of the time they show.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

Precision = Literal["minutes", "seconds", "milliseconds"]


def iso_z(moment: datetime, *, sep: str = "T", timespec: Precision = "seconds") -> str:
    """`2026-01-01T00:00:00Z`; `sep=" "` for people, `timespec` to shorten or lengthen.

    A naive time is read as UTC, as the database stores them; milliseconds are
    cut, not rounded (the PLC directory's cursor must never pass an operation).
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep, timespec) + "Z"
