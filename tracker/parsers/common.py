"""Helpers every parser shares."""

from __future__ import annotations

from collections.abc import Sequence

from tracker.model import Failure, Fetched, PayloadError, decode_json


def no_data_failure(
    records: Sequence[Fetched],
    fallback: str = "the server publishes neither NodeInfo nor a known statistics API",
) -> Failure:
    """Why nothing could be read, most telling first: no answer at all (or robots),
    then a server error, then a body that is not what was asked for; a server that
    answers but publishes nothing we know is `no_stats`."""
    errors = [record for record in records if record.error_kind]
    for record in errors:
        if record.status is None:
            return Failure(str(record.error_kind), f"{record.kind}: {record.error_detail}")
    for record in errors:
        if record.status is not None and (record.status >= 500 or record.status == 429):
            return Failure(str(record.error_kind), f"{record.kind}: {record.error_detail}")
    for record in records:
        if record.ok and record.kind != "robots.txt":
            try:
                decode_json(record)
            except PayloadError as exc:
                return Failure(exc.kind, f"{record.kind}: {exc.detail}")
    return Failure("no_stats", fallback)
