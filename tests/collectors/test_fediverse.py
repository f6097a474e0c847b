"""`tracker collect` against real HTTP servers on 127.0.0.1, checked through `tracker export`."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from tests.conftest import Workspace
from tests.support import payloads as pl
from tests.support.loopback import Loopback
from tests.support.sites import LemmySpec, MastodonSpec, MisskeySpec, iso, nodeinfo_only_routes

NOW = datetime(2022, 11, 9, 12, 0, tzinfo=UTC)


def rows(workspace: Workspace) -> set[tuple[str, ...]]:
    exported = workspace.export()
    as_tuples = [tuple(row.values()) for row in exported]
    assert len(as_tuples) == len(set(as_tuples)), "duplicate rows in the export"
    return set(as_tuples)


def test_collect_and_export_match_what_servers_published(
    workspace: Workspace, loopback: Loopback
) -> None:
    mastodon, misskey, lemmy = MastodonSpec(), MisskeySpec(), LemmySpec()
    m = loopback.add(mastodon.routes(NOW))
    k = loopback.add(misskey.routes())
    lem = loopback.add(lemmy.routes())
    pleroma = loopback.add(nodeinfo_only_routes("pleroma_2.0.json"))
    instances = [m.url, k.url, lem.url, pleroma.url, m.url + "/"]  # a duplicate spelling
    workspace.write_config({"collectors": {"fediverse": {"instances": instances}}})

    result = workspace.run("collect", TRACKER_NOW=iso(NOW))
    assert result.returncode == 0, result.stderr
    assert "fediverse: 4 targets: 4 ok, 0 failed, 0 skipped" in result.stdout

    key = lambda site: site.url.removeprefix("http://")  # noqa: E731
    pleroma_doc = pl.payload("fediverse/nodeinfo/pleroma_2.0.json")
    usage = pleroma_doc["usage"]
    at = iso(NOW)
    expected = (
        mastodon.expected(key(m), NOW)
        | misskey.expected(key(k), NOW)
        | lemmy.expected(key(lem), NOW)
        | {
            (
                "fediverse",
                "pleroma",
                key(pleroma),
                "users_total",
                "",
                at,
                str(usage["users"]["total"]),
            ),
            ("fediverse", "pleroma", key(pleroma), "posts_total", "", at, str(usage["localPosts"])),
            (
                "fediverse",
                "pleroma",
                key(pleroma),
                "registrations_open",
                "",
                at,
                str(int(pleroma_doc["openRegistrations"])),
            ),
        }
        | {
            ("fediverse", "pleroma", key(pleroma), metric, "", at, str(usage["users"][field]))
            for metric, field in (
                ("users_active_month", "activeMonth"),
                ("users_active_halfyear", "activeHalfyear"),
            )
            if field in usage["users"]
        }
    )
    assert rows(workspace) == expected
    # The duplicate spelling was fetched once.
    assert m.count("/nodeinfo/2.0") == 1
    # Misskey's stats endpoint is a POST with a JSON body.
    assert [r.method for r in k.requests if r.path == "/api/stats"] == ["POST"]
    # The User-Agent names the tool and the contact.
    agents = {r.headers.get("user-agent") for r in m.requests}
    assert len(agents) == 1 and agents.pop().startswith("tracker/")


def test_second_run_updates_weekly_buckets_and_adds_new_readings(
    workspace: Workspace, loopback: Loopback
) -> None:
    spec = MastodonSpec()
    site = loopback.add(spec.routes(NOW))
    workspace.write_config({"collectors": {"fediverse": {"instances": [site.url]}}})
    assert workspace.run("collect", TRACKER_NOW=iso(NOW)).returncode == 0
    first = rows(workspace)

    # Same instant again: nothing new, nothing duplicated.
    assert workspace.run("collect", TRACKER_NOW=iso(NOW)).returncode == 0
    assert rows(workspace) == first

    # An hour later the server corrects last week's registrations.
    spec.activity[1] = (999, 998, 997)
    site.routes.update(spec.routes(NOW))
    later = NOW.replace(hour=13)
    assert workspace.run("collect", TRACKER_NOW=iso(later)).returncode == 0
    after = rows(workspace)
    weekly_before = {r for r in first if r[4] == "week"}
    weekly_after = {r for r in after if r[4] == "week"}
    assert len(weekly_after) == len(weekly_before) == 33
    assert (
        "fediverse",
        "mastodon",
        site.url[7:],
        "registrations",
        "week",
        "2022-10-31T00:00:00Z",
        "997",
    ) in weekly_after
    point_rows = [r for r in after if r[4] == ""]
    assert len(point_rows) == 2 * len([r for r in first if r[4] == ""])


def test_fetch_log_runs_and_payload_archive(workspace: Workspace, loopback: Loopback) -> None:
    site = loopback.add(MastodonSpec().routes(NOW))
    workspace.write_config({"collectors": {"fediverse": {"instances": [site.url]}}})
    assert workspace.run("collect", TRACKER_NOW=iso(NOW)).returncode == 0
    assert workspace.run("collect", TRACKER_NOW=iso(NOW.replace(hour=13))).returncode == 0
    with sqlite3.connect(workspace.db) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        runs = db.execute(
            "SELECT collector, status, targets_ok, observations_written FROM runs"
        ).fetchall()
        assert runs == [("fediverse", "ok", 1, 39), ("fediverse", "ok", 1, 39)]
        kinds = [
            k for (k,) in db.execute("SELECT kind FROM fetches WHERE attempt_id = 1 ORDER BY seq")
        ]
        assert kinds == [
            "robots.txt",
            "nodeinfo_links",
            "nodeinfo",
            "mastodon_instance_v2",
            "mastodon_activity",
            "mastodon_peers",
        ]
        # Identical bodies from both runs are archived once.
        assert db.execute("SELECT COUNT(*) FROM payloads").fetchone()[0] == 6
        assert (
            db.execute("SELECT COUNT(*) FROM fetches WHERE payload_id IS NULL").fetchone()[0] == 0
        )


def test_status_shows_last_success_and_last_error(workspace: Workspace, loopback: Loopback) -> None:
    site = loopback.add(MastodonSpec().routes(NOW))
    from tests.support.loopback import dead_url

    dead = dead_url()
    workspace.write_config({"collectors": {"fediverse": {"instances": [site.url, dead]}}})
    assert workspace.run("collect", TRACKER_NOW=iso(NOW)).returncode == 0
    result = workspace.run("status")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("fediverse partial: 1 ok, 1 failed, 0 skipped, 39 observations" in x for x in lines)
    [good] = [x for x in lines if site.url[7:] in x]
    assert "last success 2022-11-09 12:00:00Z" in good and "last error" not in good
    [bad] = [x for x in lines if dead[7:] in x]
    assert "last success never" in bad and "refused" in bad
