"""The headline (issue 12, part 3): the report answers "where did people go" first.

On the shipped history (the @mastodonusercount bot's hourly crawl) the figures are
checked against ones computed here from the raw CSV with plain Python, by these
definitions (the same words as `tracker.analysis.headline`):

- the daily level is the last reading of each UTC day, on the running maximum of the
  readings (accounts never shrink) with re-index steps taken out: a single hourly
  change of at least 1% of the level and over 10 times the median hourly change of
  the day before and after it is a tracker re-indexing, not people arriving (the bot
  has one, 2019-07-04 11:00, +989,838 in an hour with no new server);
- observed: level on the last covered day of the 14 days from the event minus the
  level on the day before it; expected: the least-squares slope of the daily level
  over the 28 days before the event times the days between those two levels;
  ratio = observed / expected;
- weekly gain: the level at the end of an ISO week minus the week before's.
"""

from __future__ import annotations

import csv
import html
import itertools
import json
import re
import statistics
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.support.payloads import dataset
from tracker.analysis.pipeline import analyse
from tracker.config import DEFAULT_EVENTS, AnalysisSettings, Config
from tracker.exchange import import_csv
from tracker.report.build import run_report
from tracker.report.summary import build_summary
from tracker.storage.engine import open_database

BOT = "mastodonusercount_hourly_2018-08_to_2022-11-07.csv"
HEADER = ["source", "platform", "target", "metric", "period", "observed_at", "value"]
TAKEOVER = date(2022, 10, 27)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
Row = tuple[str, str, str, str, str, str, int]


def database(folder: Path, rows: Iterable[Row]) -> Engine:
    """A real SQLite database holding `rows`, written through `tracker import`'s code."""
    folder.mkdir(parents=True, exist_ok=True)
    engine = open_database(f"sqlite:///{folder / 'tracker.db'}")
    path = folder / "rows.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(rows)
    import_csv(engine, path, NOW)
    return engine


def report(engine: Engine, folder: Path) -> tuple[dict[str, Any], str]:
    config = Config(contact="https://example.org/tests", database="sqlite:///unused.db")
    run_report(engine, config, now=NOW, output=folder)
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    return summary, (folder / "index.html").read_text(encoding="utf-8")


def _z(day: date, hour: int = 12) -> str:
    return f"{day.isoformat()}T{hour:02d}:00:00Z"


def opening(page: str) -> list[str]:
    """The plain sentences right after the <h1>."""
    after = page.split("</h1>", 1)[1]
    section = after.split('<section class="answer">', 1)[1].split("</section>", 1)[0]
    assert after.lstrip().startswith('<section class="answer">')
    return [html.unescape(text) for text in re.findall(r"<p>(.*?)</p>", section)]


# --- the shipped history ------------------------------------------------------------


def bot_readings() -> list[tuple[datetime, int]]:
    with dataset(BOT).open() as handle:
        return [
            (datetime.fromtimestamp(int(row["timestamp"]), UTC), int(row["usercount"]))
            for row in csv.DictReader(handle)
        ]


def bot_rows() -> Iterable[Row]:
    with dataset(BOT).open() as handle:
        for row in csv.DictReader(handle):
            at = datetime.fromtimestamp(int(row["timestamp"]), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            for metric, column in (
                ("users_total", "usercount"),
                ("servers_total", "instancecount"),
                ("posts_total", "tootscount"),
            ):
                yield (
                    "mastodonusercount",
                    "mastodon",
                    "mastodonusercount",
                    metric,
                    "",
                    at,
                    int(row[column]),
                )


def daily_levels(readings: list[tuple[datetime, int]]) -> dict[date, float]:
    """The daily level by the module docstring's definition, in plain Python."""
    changes = [b[1] - a[1] for a, b in itertools.pairwise(readings)]
    steps = 0.0
    level: dict[date, float] = {}
    running = float("-inf")
    for index, (moment, value) in enumerate(readings):
        if index:
            change = changes[index - 1]
            around = changes[max(0, index - 25) : index - 1] + changes[index : index + 24]
            typical = statistics.median(abs(c) for c in around) if around else 0.0
            if abs(change) >= 0.01 * value and abs(change) > 10 * max(typical, 1.0):
                steps += change
        running = max(running, value - steps)
        level[moment.date()] = running
    return level


def least_squares_slope(points: list[tuple[float, float]]) -> float:
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    top = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return top / sum((x - mean_x) ** 2 for x, _ in points)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    folder = tmp_path_factory.mktemp("shipped")
    return report(database(folder, bot_rows()), folder / "report")


def test_the_takeover_gain_against_the_trend_matches_the_raw_file(
    shipped: tuple[dict[str, Any], str],
) -> None:
    summary, page = shipped
    level = daily_levels(bot_readings())
    start = TAKEOVER - timedelta(days=1)
    window = [TAKEOVER + timedelta(days=n) for n in range(14)]
    end = max(day for day in window if day in level)  # the record ends inside the window
    assert end == date(2022, 11, 7)
    observed = level[end] - level[start]
    baseline = [
        (float(n), level[TAKEOVER - timedelta(days=28 - n)])
        for n in range(28)
        if TAKEOVER - timedelta(days=28 - n) in level
    ]
    expected = least_squares_slope(baseline) * (end - start).days

    assert next(iter(summary)) == "headline"
    [takeover] = [e for e in summary["headline"]["events"] if e["date"] == "2022-10-27"]
    [gain] = takeover["gains"]
    assert (gain["source"], gain["platform"], gain["status"]) == (
        "mastodonusercount",
        "mastodon",
        "measured",
    )
    assert gain["observed"] == round(observed)
    assert gain["expected"] == pytest.approx(expected, rel=1e-6, abs=1)
    assert gain["ratio"] == round(observed / expected, 2)
    assert (gain["from"], gain["to"]) == ("2022-10-26", "2022-11-07")
    assert (gain["days_covered"], gain["window_days"]) == (12, 14)
    assert gain["coverage_text"] == "12 of 14 days covered (the record ends on 2022-11-07)"
    assert "@mastodonusercount bot's hourly crawl" in gain["source_text"]

    first = opening(page)[0]
    assert first.startswith(f"Mastodon gained {round(observed):,} accounts in the 14 days after ")
    assert "Musk takes over Twitter (2022-10-27)" in first
    assert f"{observed / expected:.1f} times the trend before" in first
    assert "12 of 14 days covered (the record ends on 2022-11-07)" in first


def test_the_takeover_week_is_the_largest_weekly_gain_in_the_bots_record(
    shipped: tuple[dict[str, Any], str],
) -> None:
    summary, page = shipped
    level = daily_levels(bot_readings())
    week_end: dict[date, float] = {}
    for day in sorted(level):
        week_end[day - timedelta(days=day.weekday())] = level[day]
    mondays = sorted(week_end)
    gains = {
        monday: week_end[monday] - week_end[previous]
        for previous, monday in itertools.pairwise(mondays)
        if monday - previous == timedelta(days=7)
    }
    last_window_day = TAKEOVER + timedelta(days=13)
    touching = {m for m in gains if m + timedelta(days=6) >= TAKEOVER and m <= last_window_day}
    event_week = max(touching, key=lambda m: gains[m])
    other_week = max(set(gains) - touching, key=lambda m: gains[m])
    assert event_week == date(2022, 10, 31)
    assert gains[event_week] > max(gains[m] for m in gains if m != event_week)

    [takeover] = [e for e in summary["headline"]["events"] if e["date"] == "2022-10-27"]
    [week] = takeover["largest_week"]
    assert week["event_week"] == {"week": "2022-10-31", "value": round(gains[event_week])}
    assert week["other_week"] == {"week": other_week.isoformat(), "value": round(gains[other_week])}
    assert week["largest"] is True
    assert week["record"]["weeks"] == len(gains)

    times = gains[event_week] / gains[other_week]
    sentence = opening(page)[1]
    assert f"week of 2022-10-31 (+{round(gains[event_week]):,} accounts)" in sentence
    assert "largest weekly gain in the bot's record (2018-08..2022-11" in sentence
    assert f"{times:.1f} times the largest week outside the event's weeks" in sentence
    assert f"{other_week.isoformat()} (+{round(gains[other_week]):,})" in sentence


def test_one_platform_alone_gets_no_share_and_mastodon_retention_says_why_not(
    shipped: tuple[dict[str, Any], str],
) -> None:
    summary, page = shipped
    [takeover] = [e for e in summary["headline"]["events"] if e["date"] == "2022-10-27"]
    assert takeover["shares"]["single_platform"] is True
    assert takeover["retention"] == []
    text = " ".join(opening(page))
    assert "Only Mastodon has counts for this window" in text
    assert "no source in the database counts both its accounts and its monthly active" in text
    # The charts that were there stay; the sign-ups chart says it has nothing.
    assert 'src="weekly_growth.png"' in page and 'src="signups.png"' in page
    assert "No sign-up counts yet" in page


# --- synthetic: several platforms, retention, sign-ups, a platform that stopped -----

E = TAKEOVER
START = E - timedelta(days=40)


def synthetic_rows() -> Iterable[Row]:
    for n in range(0, 40 + 200):
        day = START + timedelta(days=n)
        after = (day - E).days + 1  # days since the day before the event
        # Mastodon (official): +100 a day before the event, +1000 a day for 14 days, +200 later.
        if after <= 0:
            accounts = 3_000_000 + 100 * n
        elif after <= 14:
            accounts = 3_000_000 + 100 * 39 + 1000 * after
        else:
            accounts = 3_000_000 + 100 * 39 + 14_000 + 200 * (after - 14)
        active = 400_000 if after <= 0 else 600_000 if after <= 60 else 500_000
        for metric, value in (("users_total", accounts), ("users_active_month", active)):
            yield ("joinmastodon", "mastodon", "joinmastodon", metric, "", _z(day, 0), value)
        # Bluesky (a tracker of account totals): +50 a day, then +500 for 14 days.
        if n < 40 + 30:
            bsky = 100_000 + 50 * min(n, 39) + 500 * max(0, min(after, 14))
            yield ("bsky_users", "bluesky", "bsky.app", "users_total", "", _z(day), bsky)
        # Misskey: a listed server whose readings stopped a week before the event.
        if day < E - timedelta(days=7):
            yield ("fediverse", "misskey", "misskey.io", "users_total", "", _z(day), 500_000 + n)
        # PLC: new identities per day per PDS family; 20 a day, then 200 a day.
        if n < 40 + 30:
            per_day = 200 if 0 < after <= 14 else 20
            yield ("plc", "bluesky", "bsky", "accounts_created", "day", _z(day, 0), per_day)
            yield ("plc", "bluesky", "third_party", "accounts_created", "day", _z(day, 0), 2)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    folder = tmp_path_factory.mktemp("synthetic")
    return report(database(folder, synthetic_rows()), folder / "report")


def takeover_of(summary: dict[str, Any]) -> dict[str, Any]:
    [found] = [e for e in summary["headline"]["events"] if e["date"] == "2022-10-27"]
    return found  # type: ignore[no-any-return]


def gain_of(event: dict[str, Any], source: str, metric: str = "users_total") -> dict[str, Any]:
    [found] = [g for g in event["gains"] if (g["source"], g["metric"]) == (source, metric)]
    return found  # type: ignore[no-any-return]


def test_each_platform_gain_and_its_share_of_the_new_accounts(
    synthetic: tuple[dict[str, Any], str],
) -> None:
    summary, page = synthetic
    event = takeover_of(summary)
    mastodon, bluesky = gain_of(event, "joinmastodon"), gain_of(event, "bsky_users")
    assert (mastodon["observed"], mastodon["expected"], mastodon["ratio"]) == (14_000, 1_400, 10.0)
    assert (bluesky["observed"], bluesky["expected"], bluesky["ratio"]) == (7_000, 700, 10.0)
    assert mastodon["coverage_text"] == "14 of 14 days covered"
    shares = {s["platform"]: s for s in event["shares"]["platforms"]}
    assert event["shares"]["single_platform"] is False
    # Bluesky's share is measured on its account total (the widest view), not PLC sign-ups.
    assert shares["bluesky"]["source"] == "bsky_users"
    assert shares["mastodon"]["share"] == round(14_000 / 21_000, 3)
    assert shares["bluesky"]["share"] == round(7_000 / 21_000, 3)
    text = opening(page)
    assert text[0].startswith("Mastodon gained 14,000 accounts in the 14 days after Musk takes")
    assert "10.0 times the trend before (1,400 expected over the same days)" in text[0]
    assert any("Mastodon 67% (joinmastodon), Bluesky 33% (bsky_users)" in s for s in text)


def test_signups_are_measured_against_the_rate_before(
    synthetic: tuple[dict[str, Any], str],
) -> None:
    summary, page = synthetic
    plc = gain_of(takeover_of(summary), "plc", "accounts_created")
    assert plc["kind"] == "sign-ups"
    assert plc["observed"] == 14 * (200 + 2)
    assert plc["expected"] == 14 * (20 + 2)
    assert "PLC directory" in plc["source_text"]
    assert "No sign-up counts yet" not in page  # the sign-ups chart has its data


def test_retention_is_monthly_active_users_per_account_from_one_source(
    synthetic: tuple[dict[str, Any], str],
) -> None:
    summary, page = synthetic
    [kept] = takeover_of(summary)["retention"]
    before_accounts = 3_000_000 + 100 * 39
    later_day = E + timedelta(days=182)
    later_accounts = before_accounts + 14_000 + 200 * (182 + 1 - 14)
    assert kept["source"] == "joinmastodon" and kept["days_later"] == 182
    assert kept["before"] == {
        "date": (E - timedelta(days=1)).isoformat(),
        "accounts": before_accounts,
        "active": 400_000,
        "share": round(400_000 / before_accounts, 3),
    }
    assert kept["later"] == {
        "date": later_day.isoformat(),
        "accounts": later_accounts,
        "active": 500_000,
        "share": round(500_000 / later_accounts, 3),
    }
    assert "Mastodon monthly active users per account" in page


def test_a_platform_with_data_only_before_the_event_says_so(
    synthetic: tuple[dict[str, Any], str],
) -> None:
    summary, page = synthetic
    misskey = gain_of(takeover_of(summary), "fediverse")
    assert misskey["status"] == "ended_before"
    assert misskey["observed"] is None and misskey["days_covered"] == 0
    ended = (E - timedelta(days=8)).isoformat()
    assert misskey["coverage_text"] == f"no reading after the event (the record ends on {ended})"
    assert f"Misskey (fediverse): no reading after the event; its record ends on {ended}." in page
    assert "misskey" not in {s["platform"] for s in takeover_of(summary)["shares"]["platforms"]}


# --- nothing yet ----------------------------------------------------------------------


def test_an_empty_database_says_there_is_nothing_yet(tmp_path: Path) -> None:
    engine = database(tmp_path / "db", [])
    summary = build_summary(analyse(engine), DEFAULT_EVENTS, AnalysisSettings(), NOW)
    headline = summary["headline"]
    assert next(iter(summary)) == "headline"
    assert headline["text"][0].startswith("Nothing to answer yet: the database holds no")
    assert [e["gains"] for e in headline["events"]] == [[]] * len(DEFAULT_EVENTS)
    _, page = report(engine, tmp_path / "report")
    assert opening(page)[0].startswith("Nothing to answer yet")
