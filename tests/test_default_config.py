"""The shipped config.yaml: it loads, and it answers the article's question out of the box."""

from __future__ import annotations

from datetime import date

from tests.conftest import REPO, Workspace
from tracker.collectors import registry
from tracker.config import DEFAULT_EVENTS
from tracker.loader import load_config
from tracker.targets import parse_target

REQUIRED_EVENTS = {
    date(2022, 10, 27),  # the takeover
    date(2023, 7, 1),  # rate limits on reading
    date(2023, 7, 5),  # Threads
    date(2023, 7, 23),  # the rebrand to X
    date(2024, 8, 30),  # the ban in Brazil
    date(2024, 11, 5),  # the US election
}


def test_default_config_loads_with_every_collector() -> None:
    config = load_config(REPO / "config.yaml")
    assert set(config.collectors) == set(registry.names())  # a new collector ships configured
    assert config.database.endswith("/data/tracker.db")


def test_default_config_covers_the_article() -> None:
    config = load_config(REPO / "config.yaml")
    keys = {parse_target(text).key for text in config.collectors["fediverse"].instances}  # type: ignore[attr-defined]
    assert {"mastodon.social", "mstdn.jp", "pawoo.net", "fedibird.com", "misskey.io"} <= keys
    assert {"counter.social", "lemmy.world", "pixelfed.social"} <= keys
    platforms = {a.platform for a in config.collectors["wikipedia"].articles}  # type: ignore[attr-defined]
    assert {
        "twitter",
        "mastodon",
        "bluesky",
        "misskey",
        "threads",
        "tumblr",
        "mixi",
        "mixi2",
    } <= platforms
    assert {"countersocial", "cohost"} <= platforms
    wikis = {a.wiki for a in config.collectors["wikipedia"].articles}  # type: ignore[attr-defined]
    assert wikis == {"en.wikipedia", "ja.wikipedia"}
    dates = {event.date for event in config.events}
    assert dates >= REQUIRED_EVENTS
    assert any(event.date.year == 2022 and event.date.month == 11 for event in config.events)
    # The built-in defaults (used when a config has no events) are the same list.
    assert [(e.date, e.label) for e in config.events] == [(e.date, e.label) for e in DEFAULT_EVENTS]


def test_collectors_command_says_what_runs_and_why_not(workspace: Workspace) -> None:
    workspace.write_config(text=(REPO / "config.yaml").read_text(encoding="utf-8"))
    result = workspace.cli("collectors")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "fediverse: enabled" in lines
    assert any(line.startswith("tumblr: skipped, TUMBLR_API_KEY not set") for line in lines)
    assert any("collectors.wikipedia.articles" in line for line in lines)
    with_key = workspace.cli("collectors", TUMBLR_API_KEY="k")
    assert "tumblr: enabled" in with_key.stdout.splitlines()


def test_unconfigured_and_disabled_collectors_say_how_to_enable(workspace: Workspace) -> None:
    workspace.write_config({"collectors": {"joinmastodon": {"enabled": False}}})
    lines = workspace.cli("collectors").stdout.splitlines()
    assert "joinmastodon: disabled, collectors.joinmastodon.enabled is false" in lines
    assert any(
        line.startswith("fediverse: not configured, add collectors.fediverse to") for line in lines
    )
