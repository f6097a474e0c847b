"""The `schedule:` section: expressions, defaults, and one-line errors naming the key."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tracker.errors import ConfigError
from tracker.loader import parse_config
from tracker.schedule_plan import DEFAULT_SCHEDULE, plan
from tracker.timetable import trigger_for

WEDNESDAY = datetime(2026, 11, 25, 14, 16, 19, tzinfo=UTC)


def fires(expression: str, after: datetime, count: int) -> list[datetime]:
    """The next fire times of the timetable without jitter."""
    trigger = trigger_for(expression).exact
    times: list[datetime] = []
    fire = trigger.get_next_fire_time(None, after)
    while len(times) < count:
        times.append(fire)
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return times


def test_cron_is_utc_and_weekdays_count_from_sunday_as_in_crontab() -> None:
    # 2026-11-29 is a Sunday, 2026-11-30 a Monday.
    assert fires("0 9 * * 0", WEDNESDAY, 2) == [
        datetime(2026, 11, 29, 9, tzinfo=UTC),
        datetime(2026, 12, 6, 9, tzinfo=UTC),
    ]
    assert fires("0 9 * * 7", WEDNESDAY, 1) == [datetime(2026, 11, 29, 9, tzinfo=UTC)]
    assert fires("30 1 * * 1", WEDNESDAY, 1) == [datetime(2026, 11, 30, 1, 30, tzinfo=UTC)]
    assert [t.day for t in fires("0 0 * * 1-5", WEDNESDAY, 5)] == [26, 27, 30, 1, 2]
    assert [t.day for t in fires("0 0 * * */2", WEDNESDAY, 4)] == [26, 28, 29, 1]  # Thu Sat Sun Tue
    assert [t.day for t in fires("0 0 * * 5-7", WEDNESDAY, 3)] == [27, 28, 29]  # Fri Sat Sun
    assert [t.day for t in fires("0 0 * * sat,sun", WEDNESDAY, 2)] == [28, 29]


def test_cron_fields_and_steps() -> None:
    assert fires("0 */6 * * *", WEDNESDAY, 3) == [
        datetime(2026, 11, 25, 18, tzinfo=UTC),
        datetime(2026, 11, 26, 0, tzinfo=UTC),
        datetime(2026, 11, 26, 6, tzinfo=UTC),
    ]
    assert fires("15 3 1 * *", WEDNESDAY, 2) == [
        datetime(2026, 12, 1, 3, 15, tzinfo=UTC),
        datetime(2027, 1, 1, 3, 15, tzinfo=UTC),
    ]


def test_intervals_are_anchored_to_utc_midnight_so_restarts_keep_the_slots() -> None:
    assert fires("every 6h", WEDNESDAY, 2) == [
        datetime(2026, 11, 25, 18, tzinfo=UTC),
        datetime(2026, 11, 26, 0, tzinfo=UTC),
    ]
    assert fires("every 30s", WEDNESDAY, 2) == [
        datetime(2026, 11, 25, 14, 16, 30, tzinfo=UTC),
        datetime(2026, 11, 25, 14, 17, tzinfo=UTC),
    ]
    assert fires("every 1d", WEDNESDAY, 1) == [datetime(2026, 11, 26, tzinfo=UTC)]
    assert trigger_for("every 90m").period == 5400
    assert trigger_for("EVERY 2 h").period == 7200


def test_jitter_is_small_and_the_misfire_grace_covers_one_period() -> None:
    hourly = trigger_for("0 * * * *")
    assert hourly.period == 3600
    assert hourly.trigger.jitter == 60
    assert trigger_for("every 30s").trigger.jitter == pytest.approx(1.5)
    weekdays = trigger_for("0 0 * * 1-5")
    assert weekdays.period == 3 * 86400  # Friday to Monday is the longest gap
    fire = hourly.trigger.get_next_fire_time(None, WEDNESDAY)
    assert (
        datetime(2026, 11, 25, 15, tzinfo=UTC) <= fire <= datetime(2026, 11, 25, 15, 1, tzinfo=UTC)
    )


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", "'61': the last value (61) is higher than the maximum value (59)"),
        ("0 0 * *", "a cron expression has 5 fields (minute hour day month weekday), not 4"),
        ("* * * * 8", "day of week '8': '8' is not 0-7 or sun..sat"),
        ("0 0 1 * 1", "give either a day of month or a day of week, not both"),
        ("every 0s", "an interval must be at least 1 second"),
        ("every 5 weeks", "an interval is `every <n><unit>` with unit s, m, h or d"),
        ("0 0 31 2 *", "this expression never fires"),
    ],
)
def test_a_bad_expression_is_one_line_naming_the_key(
    workspace: Workspace, expression: str, message: str
) -> None:
    workspace.write_config({"schedule": {"fediverse": expression}})
    result = workspace.cli("schedule", "--list")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {workspace.config}: schedule.fediverse: {message}")


def test_unknown_names_and_wrong_types_are_config_errors(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    with pytest.raises(
        ConfigError, match=r"schedule\.fedivers: neither a collector, `crawl` nor `report`"
    ):
        parse_config("contact: https://example.org/x\nschedule: {fedivers: every 6h}\n", path)
    with pytest.raises(ConfigError, match=r"schedule\.report: must be a cron expression"):
        parse_config("contact: https://example.org/x\nschedule: {report: true}\n", path)


def base_config(tmp_path: Path, extra: str = "") -> str:
    return (
        "contact: https://example.org/x\n"
        "collectors:\n"
        "  fediverse: {instances: [a.example]}\n"
        "  joinmastodon: {}\n"
        "  wikipedia: {enabled: false}\n" + extra
    )


def test_defaults_apply_to_configured_and_enabled_collectors_only(tmp_path: Path) -> None:
    config = parse_config(base_config(tmp_path), tmp_path / "config.yaml")
    jobs, notes = plan(config)
    assert {job.name: job.timing.expression for job in jobs} == {
        "fediverse": DEFAULT_SCHEDULE["fediverse"],
        "joinmastodon": DEFAULT_SCHEDULE["joinmastodon"],
        "report": DEFAULT_SCHEDULE["report"],
    }
    assert trigger_for(DEFAULT_SCHEDULE["fediverse"]).period == 6 * 3600
    assert trigger_for(DEFAULT_SCHEDULE["tumblr"]).period == 86400
    assert any(
        note.startswith("wikipedia: not scheduled: collectors.wikipedia is disabled")
        for note in notes
    )
    assert any(
        note.startswith("bluesky: not scheduled: collectors.bluesky is not in") for note in notes
    )


def test_the_crawl_is_scheduled_daily_only_with_discover(tmp_path: Path) -> None:
    without = parse_config(
        base_config(tmp_path, "schedule:\n  crawl: 0 5 * * *\n"), tmp_path / "config.yaml"
    )
    jobs, notes = plan(without)
    assert "crawl" not in {job.name for job in jobs}
    assert any(
        note.startswith("crawl: not scheduled: collectors.fediverse.discover is not in")
        for note in notes
    )
    text = base_config(tmp_path).replace(
        "fediverse: {instances: [a.example]}",
        "fediverse: {instances: [a.example], discover: {seeds: [a.example]}}",
    )
    jobs, _ = plan(parse_config(text, tmp_path / "config.yaml"))
    timing = {job.name: job.timing.expression for job in jobs}
    assert timing["crawl"] == DEFAULT_SCHEDULE["crawl"] == "0 3 * * *"
    assert trigger_for(timing["crawl"]).period == 86400


def test_the_section_overrides_defaults_and_off_unschedules(tmp_path: Path) -> None:
    extra = (
        "schedule:\n  fediverse: every 30m\n  report: off\n  joinmastodon: null\n"
        "  tumblr: 0 1 * * *\n"
    )
    config = parse_config(base_config(tmp_path, extra), tmp_path / "config.yaml")
    jobs, notes = plan(config)
    assert [(job.name, job.timing.expression) for job in jobs] == [("fediverse", "every 30m")]
    assert "report: not scheduled (schedule.report is off)" in notes
    assert "joinmastodon: not scheduled (schedule.joinmastodon is off)" in notes
    assert any(
        note.startswith("tumblr: not scheduled: collectors.tumblr is not in")
        and note.endswith("(ignoring schedule.tumblr: 0 1 * * *)")
        for note in notes
    )


def test_list_shows_the_next_slots_without_starting(workspace: Workspace) -> None:
    workspace.write_config(
        {
            "collectors": {"fediverse": {"instances": ["a.example"]}},
            "schedule": {"fediverse": "0 */6 * * *", "report": "off"},
        }
    )
    result = workspace.cli("schedule", "--list")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("fediverse: 0 */6 * * * (UTC); next: ")
    slots = [
        datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%SZ")
        for text in first.split("next: ")[1].split(",")
    ]
    assert len(slots) == 3
    assert all(slot.minute == 0 and slot.hour % 6 == 0 for slot in slots)
    assert [b - a for a, b in itertools.pairwise(slots)] == [timedelta(hours=6)] * 2
    assert not workspace.db.exists()


def test_interval_slots_stay_on_the_grid_whatever_the_jitter() -> None:
    trigger = trigger_for("every 1h").trigger
    fire = trigger.get_next_fire_time(None, WEDNESDAY)
    for _ in range(200):  # APScheduler's own interval would drift by the summed jitter
        slot = fire.replace(minute=0, second=0, microsecond=0)
        assert timedelta(0) <= fire - slot <= timedelta(seconds=60)
        following = trigger.get_next_fire_time(fire, fire)
        assert following.replace(minute=0, second=0, microsecond=0) - slot == timedelta(hours=1)
        fire = following
