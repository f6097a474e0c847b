"""The known public archives: where each comes from, its licence, what it counts, its format.

Each archive's name is also its `source` and its one `target`: one target that
reports the network's own figure is an aggregate, so the analysis shows each
archive as its own network total line, never summed with anything (see
`tracker.analysis.totals.network_parts`). No name equals a live collector's source
(`joinmastodon`, `bluesky`): an archive is never spliced into a collected series.
The names are a contract with the report code and the README: never rename one.
"""

from __future__ import annotations

from dataclasses import dataclass

from tracker.history.formats import (
    CsvFormat,
    Format,
    JsonPointsFormat,
    iso_day,
    iso_instant,
    iso_minute,
    iso_second,
    unix_seconds,
)
from tracker.model import SourceFacts


@dataclass(frozen=True)
class Archive:
    name: str
    """The CLI name, the `source` and the `target` (at most 32 characters: `series.source`)."""
    platform: str
    origin: str
    """Where a user downloads the file (the file as published there, unchanged)."""
    licence: str
    measures: str
    format: Format
    about: SourceFacts
    """How the charts and the page name it (`tracker.catalogue`)."""
    shipped: str | None = None
    """The packaged file (`tracker/history/data/<name>.xz`) when the licence allows it."""

    @property
    def source(self) -> str:
        return self.name

    @property
    def target(self) -> str:
        return self.name

    @property
    def collector(self) -> str:
        """The `runs.collector` of its imports, so `tracker status` tells where points came from."""
        return f"history:{self.name}"


_NOT_REDISTRIBUTABLE = "no licence stated: not redistributed, download it yourself"

ARCHIVES: dict[str, Archive] = {
    archive.name: archive
    for archive in (
        Archive(
            name="mastodonusercount",
            platform="mastodon",
            origin="https://github.com/seblammers/mastodon-user-data (mastostats.csv)",
            licence="CC0 1.0",
            measures="the @mastodonusercount bot's hourly crawl of every Mastodon instance it "
            "knew, 2018-08-11..2022-11-07: accounts, instances, posts",
            about=SourceFacts(
                caption="imported crawl of the @mastodonusercount bot",
                brief="imported bot crawl",
                sentence="the @mastodonusercount bot's hourly crawl of all Mastodon servers "
                "it knew",
                record="the bot's record",
            ),
            format=CsvFormat(
                header=("timestamp", "usercount", "instancecount", "tootscount"),
                time_column="timestamp",
                read_time=unix_seconds,
                metrics=(
                    ("usercount", "users_total"),
                    ("instancecount", "servers_total"),
                    ("tootscount", "posts_total"),
                ),
                zero_is_missing=frozenset({"instancecount"}),
            ),
            shipped="mastodonusercount_hourly_2018-08_to_2022-11-07.csv",
        ),
        Archive(
            name="joinmastodon_archive",
            platform="mastodon",
            origin="https://api.joinmastodon.org/statistics, daily, as saved in "
            "https://github.com/obsesivegamer/Mastodon-User-Trends",
            licence=_NOT_REDISTRIBUTABLE,
            measures="the official joinmastodon.org daily statistics from 2022-09-30: servers, "
            "accounts, monthly active users (the live `joinmastodon` collector reads the "
            "same endpoint; this archive stays a separate source)",
            about=SourceFacts(
                caption="imported archive of joinmastodon.org's official statistics",
                brief="imported official statistics",
                sentence="joinmastodon.org's official daily statistics (imported archive)",
                record="the official record",
            ),
            format=CsvFormat(
                header=("date", "server_count", "user_count", "active_user_count"),
                time_column="date",
                read_time=iso_day,
                metrics=(
                    ("server_count", "servers_total"),
                    ("user_count", "users_total"),
                    ("active_user_count", "users_active_month"),
                ),
            ),
        ),
        Archive(
            name="instances_social",
            platform="mastodon",
            origin="https://github.com/mauforonda/mastodon_timeline (data/mastodon.csv)",
            licence=_NOT_REDISTRIBUTABLE,
            measures="accounts and posts summed over the instances instances.social lists, "
            "about every 3 hours from 2022-11-04 (re-indexed on 2022-11-21: a step, not growth)",
            about=SourceFacts(
                caption="imported instances.social totals",
                brief="imported",
                sentence="instances.social's totals over the servers it lists",
                record="instances.social's record",
            ),
            format=CsvFormat(
                header=("updated_at", "users", "statuses"),
                time_column="updated_at",
                read_time=iso_minute,
                metrics=(("users", "users_total"), ("statuses", "posts_total")),
            ),
        ),
        Archive(
            name="bluesky_users",
            platform="bluesky",
            origin="https://github.com/elaval/bluesky-users",
            licence=_NOT_REDISTRIBUTABLE,
            measures="total Bluesky accounts at irregular points, 2023-05..2024-11",
            about=SourceFacts(
                caption="imported Bluesky account counts (bluesky-users archive)",
                brief="imported counts",
                sentence="the bluesky-users archive's count of Bluesky accounts (irregular points)",
                record="the bluesky-users record",
            ),
            format=JsonPointsFormat(
                time_key="date", value_key="users", read_time=iso_instant, metric="users_total"
            ),
        ),
        Archive(
            name="bsky_users",
            platform="bluesky",
            origin="https://github.com/elaval/bskyusers (figures of https://bsky-users.theo.io)",
            licence=_NOT_REDISTRIBUTABLE,
            measures="total Bluesky accounts about hourly from 2024-11-22",
            about=SourceFacts(
                caption="imported bsky-users tracker",
                brief="imported tracker",
                sentence="the bsky-users tracker's count of Bluesky accounts",
                record="the bsky-users record",
            ),
            format=CsvFormat(
                header=("timestamp", "users"),
                time_column="timestamp",
                read_time=iso_second,
                metrics=(("users", "users_total"),),
            ),
        ),
    )
}
