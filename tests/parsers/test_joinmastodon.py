"""The official statistics parser, on the real shape (numbers as strings, two date styles)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime

import pytest

from tests.support.payloads import dataset, payload
from tracker.model import PayloadError
from tracker.parsers.joinmastodon import parse_statistics

NOW = datetime(2025, 10, 15, 6, 0, tzinfo=UTC)


def test_real_shape_gives_three_daily_readings_per_day() -> None:
    document = payload("joinmastodon/statistics.json")
    parsed = parse_statistics(document, NOW)
    assert parsed.failure is None and not parsed.rejections
    first = document[0]
    day = datetime.fromisoformat(first["period"][:10]).replace(tzinfo=UTC)
    got = {(o.metric, o.observed_at): o.value for o in parsed.observations}
    assert got[("servers_total", day)] == int(first["server_count"])
    assert got[("users_total", day)] == int(first["user_count"])
    assert got[("users_active_month", day)] == int(first["active_user_count"])
    assert len(parsed.observations) == 3 * len(document)
    assert {o.period for o in parsed.observations} == {""}
    assert {(o.platform, o.target) for o in parsed.observations} == {("mastodon", "joinmastodon")}


def test_short_dates_and_the_whole_real_history() -> None:
    path = dataset("joinmastodon_statistics_daily_2022-09-30_to_2025-10-14.csv")
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    document = [
        {
            "period": row["date"],
            "server_count": row["server_count"],
            "user_count": row["user_count"],
            "active_user_count": row["active_user_count"],
        }
        for row in rows
    ]
    parsed = parse_statistics(document, NOW)
    assert len({o.observed_at for o in parsed.observations}) == len(rows)
    peak = max(
        (o for o in parsed.observations if o.metric == "users_active_month"), key=lambda o: o.value
    )
    expected = max(rows, key=lambda row: int(row["active_user_count"]))
    assert (peak.observed_at.date().isoformat(), peak.value) == (
        expected["date"],
        int(expected["active_user_count"]),
    )


def test_lies_are_rejected_one_by_one() -> None:
    document = [
        {
            "period": "2022-11-01",
            "server_count": "-3",
            "user_count": "3800000",
            "active_user_count": "9000000",
        },
        {"period": "yesterday", "server_count": "1", "user_count": "1", "active_user_count": "1"},
        {"period": "2031-01-01", "server_count": "1", "user_count": "1", "active_user_count": "1"},
        {
            "period": "2022-11-02",
            "server_count": 3100,
            "user_count": "3.9e6",
            "active_user_count": None,
        },
        "junk",
    ]
    parsed = parse_statistics(document, NOW)
    got = {(o.metric, o.observed_at.day): o.value for o in parsed.observations}
    assert got == {("users_total", 1): 3800000, ("servers_total", 2): 3100}
    reasons = sorted(r.reason.split(" (")[0] for r in parsed.rejections)
    assert reasons == [
        "a day in the future",
        "more active users than users in total",
        "negative count",
        "not a date",
        "not a number",
        "not an object",
    ]


def test_not_an_array_or_nothing_usable() -> None:
    with pytest.raises(PayloadError):
        parse_statistics({"error": "nope"}, NOW)
    parsed = parse_statistics([], NOW)
    assert parsed.failure is not None and parsed.failure.kind == "bad_shape"


def test_a_day_after_the_observation_day_is_rejected() -> None:
    # NOW is 2025-10-15 06:00 UTC: the 15th is today (kept), the 16th is the future.
    element = {"server_count": "1", "user_count": "2", "active_user_count": "1"}
    document = [{"period": day, **element} for day in ("2025-10-15", "2025-10-16")]
    parsed = parse_statistics(document, NOW)
    assert {o.observed_at.date().isoformat() for o in parsed.observations} == {"2025-10-15"}
    assert [(r.metric, r.raw, r.reason) for r in parsed.rejections] == [
        ("period", "2025-10-16", "a day in the future")
    ]
