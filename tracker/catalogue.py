"""What the charts and the page say about each source and platform, read from their owners.

A collector declares the words for its source (`Collector.about`) and the display
name and colour of the platforms it reports (`Collector.platforms`); an imported
archive declares its own words (`Archive.about`). The charts and the report ask
here and list no platform themselves, so adding a platform touches no module
above the collectors (README "Adding a platform").
"""

from __future__ import annotations

from functools import cache

from tracker.collectors import registry
from tracker.history.archives import ARCHIVES
from tracker.model import PlatformLook, SourceFacts


def source_order() -> tuple[str, ...]:
    """Collected sources in the registry's order: charts draw them before imported ones."""
    return tuple(registry.names())


@cache
def _sources() -> dict[str, SourceFacts]:
    facts = {collector.name: collector.about for collector in registry.COLLECTORS}
    facts.update({archive.name: archive.about for archive in ARCHIVES.values()})
    return facts


def facts_of(source: str) -> SourceFacts | None:
    """None for a source nobody declares (a database written by another version)."""
    return _sources().get(source)


@cache
def platform_looks() -> dict[str, PlatformLook]:
    """Every declared platform by its lower-case name. Two collectors may not disagree."""
    looks: dict[str, PlatformLook] = {}
    owners: dict[str, str] = {}
    for collector in registry.COLLECTORS:
        for platform, look in collector.platforms.items():
            if platform in looks and looks[platform] != look:
                raise ValueError(
                    f"platform {platform!r} has two looks: in {owners[platform]} and "
                    f"{collector.name} (declare it in one collector)"
                )
            looks.setdefault(platform, look)
            owners.setdefault(platform, collector.name)
    return looks


def platform_name(platform: str) -> str:
    """The declared display name, else the platform as stored."""
    look = platform_looks().get(platform.lower())
    return look.name if look is not None else platform
