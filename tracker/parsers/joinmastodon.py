"""Pure parser for the official Mastodon network statistics (`api.joinmastodon.org/statistics`).

A JSON array, one element per day, every count a string; `period` is seen both as
`2022-09-30T00:00:00.000+00:00` and as `2025-02-16`, so only its first ten
characters are read. The endpoint returns a window, not always the full history,
and its `user_count` is not monotonic (servers enter and leave its crawl), so each
day is an independent reading keyed on its date.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from tracker.model import Failure, Fetched, Observation, Parsed, PayloadError, decode_json
from tracker.parsers.common import no_data_failure
from tracker.sanity import Rejection, check_count

TARGET = "joinmastodon"
KIND = "statistics"
FIELDS = {
    "server_count": "servers_total",
    "user_count": "users_total",
    "active_user_count": "users_active_month",
}


def parse(target: str, records: Sequence[Fetched], observed_at: datetime) -> Parsed:
    """The fetch log of the one statistics request into one reading per published day."""
    for record in records:
        if record.kind == KIND and record.ok:
            try:
                return parse_statistics(decode_json(record), observed_at)
            except PayloadError as exc:
                return Parsed(failure=Failure(exc.kind, f"{KIND}: {exc.detail}"))
    return Parsed(failure=no_data_failure(records, "the endpoint published no statistics"))


def parse_statistics(document: Any, observed_at: datetime) -> Parsed:
    parsed = Parsed(platform="mastodon", software="joinmastodon")
    if not isinstance(document, list):
        raise PayloadError("bad_shape", "statistics is not a JSON array")
    # A day after the one the run observed cannot have been counted yet (the server's
    # clock ahead of ours at midnight at most delays that day to the next run).
    latest_plausible = observed_at.astimezone(UTC).date()
    for element in document:
        if not isinstance(element, dict):
            parsed.rejections.append(Rejection("period", repr(element)[:80], "not an object"))
            continue
        day = _day(element.get("period"))
        if day is None:
            shown = str(element.get("period"))[:80]
            parsed.rejections.append(Rejection("period", shown, "not a date"))
            continue
        if day > latest_plausible:
            parsed.rejections.append(Rejection("period", day.isoformat(), "a day in the future"))
            continue
        moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        values: dict[str, int] = {}
        for field, metric in FIELDS.items():
            result = check_count(metric, element.get(field))
            if isinstance(result, Rejection):
                parsed.rejections.append(result)
            elif isinstance(result, int):
                values[metric] = result
        active, total = values.get("users_active_month"), values.get("users_total")
        if active is not None and total is not None and active > total:
            del values["users_active_month"]
            reason = f"more active users than users in total ({total}) on {day}"
            parsed.rejections.append(Rejection("users_active_month", str(active), reason))
        parsed.observations.extend(
            Observation("mastodon", TARGET, metric, value, moment)
            for metric, value in values.items()
        )
    if not parsed.observations:
        parsed.failure = Failure("bad_shape", "the statistics hold no usable day")
    return parsed


def _day(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None
