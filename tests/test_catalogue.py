"""The charts' and the page's words and looks come from the collectors and archives."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from tests.conftest import REPO
from tracker import catalogue
from tracker.collectors import registry
from tracker.collectors.joinmastodon import JoinMastodonCollector
from tracker.history.archives import ARCHIVES
from tracker.loader import load_config
from tracker.model import PlatformLook


def test_every_collected_and_imported_source_has_a_caption() -> None:
    for source in [*registry.names(), *ARCHIVES]:
        facts = catalogue.facts_of(source)
        assert facts is not None and facts.caption, source
    assert catalogue.facts_of("nobody") is None
    assert catalogue.source_order() == tuple(registry.names())


def test_every_platform_the_default_config_follows_has_a_name_and_colour() -> None:
    config = load_config(REPO / "config.yaml")
    platforms = {a.platform for a in config.collectors["wikipedia"].articles}  # type: ignore[attr-defined]
    looks = catalogue.platform_looks()
    missing = {p for p in platforms if p not in looks or looks[p].colour is None}
    assert missing == set()
    assert catalogue.platform_name("Mastodon") == "Mastodon"
    assert catalogue.platform_name("nostr") == "nostr"  # undeclared: as stored


def test_two_collectors_may_not_give_one_platform_two_looks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Rival(JoinMastodonCollector):
        name = "rival"
        platforms: ClassVar[Any] = {"bluesky": PlatformLook("Blue Sky", "#000000")}

    monkeypatch.setattr(registry, "COLLECTORS", (*registry.COLLECTORS, Rival))
    catalogue.platform_looks.cache_clear()
    try:
        with pytest.raises(ValueError, match="'bluesky' has two looks: in bluesky and rival"):
            catalogue.platform_looks()
    finally:
        catalogue.platform_looks.cache_clear()


def test_a_new_collector_is_named_and_coloured_without_touching_the_charts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tracker.charts.data import describe, ordered_sources
    from tracker.charts.style import platform_colour

    class Nostr(JoinMastodonCollector):
        name = "nostr"
        platforms: ClassVar[Any] = {"nostr": PlatformLook("Nostr", "#8e44ad")}

    monkeypatch.setattr(registry, "COLLECTORS", (*registry.COLLECTORS, Nostr))
    for cached in (catalogue.platform_looks, catalogue._sources):
        cached.cache_clear()
    try:
        assert catalogue.platform_name("nostr") == "Nostr"
        assert platform_colour("nostr") == "#8e44ad"
        assert describe("nostr") == f"nostr ({JoinMastodonCollector.about.caption})"
        import pandas as pd

        frame = pd.DataFrame(
            {"source": ["mastodonusercount", "nostr", "joinmastodon"], "day": [1, 9, 5]}
        )
        assert ordered_sources(frame) == ["joinmastodon", "nostr", "mastodonusercount"]
    finally:
        for cached in (catalogue.platform_looks, catalogue._sources):
            cached.cache_clear()
