"""`joinmastodon` end to end on loopback: a real HTTP server serving the real shape."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from tests.conftest import Workspace
from tests.support.loopback import Loopback, Reply
from tests.support.payloads import payload
from tests.support.sites import iso

NOW = datetime(2022, 11, 1, 6, 0, tzinfo=UTC)


def test_backfill_then_revision_in_place(workspace: Workspace, loopback: Loopback) -> None:
    document = payload("joinmastodon/statistics.json")
    site = loopback.add({"GET /statistics": Reply(body=document)})
    workspace.write_config({"collectors": {"joinmastodon": {"url": site.url + "/statistics"}}})
    result = workspace.run("collect", TRACKER_NOW=iso(NOW))
    assert result.returncode == 0, result.stderr
    assert "joinmastodon: 1 targets: 1 ok" in result.stdout
    expected = {
        (
            "joinmastodon",
            "mastodon",
            "joinmastodon",
            metric,
            "",
            element["period"][:10] + "T00:00:00Z",
            str(int(element[field])),
        )
        for element in document
        for metric, field in (
            ("servers_total", "server_count"),
            ("users_total", "user_count"),
            ("users_active_month", "active_user_count"),
        )
    }
    assert {tuple(r.values()) for r in workspace.export()} == expected

    # The endpoint revises a day and adds one: the day is updated, not duplicated.
    document[-1]["user_count"] = "3723999"
    document.append(
        {
            "period": "2022-11-01",
            "server_count": "3100",
            "user_count": "3800000",
            "active_user_count": "600000",
        }
    )
    site.routes["GET /statistics"] = Reply(body=document)
    assert workspace.cli("collect", TRACKER_NOW=iso(NOW.replace(hour=12))).returncode == 0
    rows = {(r["metric"], r["observed_at"]): r["value"] for r in workspace.export()}
    assert rows[("users_total", "2022-10-31T00:00:00Z")] == "3723999"
    assert rows[("users_total", "2022-11-01T00:00:00Z")] == "3800000"
    assert len(rows) == len(expected) + 3


def test_hostile_endpoint_is_recorded_not_fatal(workspace: Workspace, loopback: Loopback) -> None:
    site = loopback.add(
        {"GET /statistics": Reply(body="<html>maintenance</html>", content_type="text/html")}
    )
    workspace.write_config({"collectors": {"joinmastodon": {"url": site.url + "/statistics"}}})
    result = workspace.cli("collect", TRACKER_NOW=iso(NOW))
    assert result.returncode == 0
    assert "1 failed" in result.stdout
    with sqlite3.connect(workspace.db) as db:
        assert db.execute("SELECT outcome, error_kind FROM attempts").fetchall() == [
            ("failed", "not_json")
        ]
    assert workspace.export() == []
