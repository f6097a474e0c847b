"""A series' platform changes only on NodeInfo evidence (issue 10, item 3).

A Pleroma server whose NodeInfo fails for one run still answers Mastodon's
`/api/v1/instance`, and the collector falls back to it; that run's numbers are
kept, but the `mastodon` it guesses must not relabel the server's history.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from tests.conftest import Workspace
from tests.support import payloads as pl
from tests.support.loopback import Loopback, Reply, Routes
from tests.support.sites import iso, nodeinfo_only_routes

NOW = datetime(2022, 11, 9, 12, 0, tzinfo=UTC)


def fallback_routes() -> Routes:
    """NodeInfo broken for a run (502), the Mastodon-compatible API still answering."""
    return {
        "GET /.well-known/nodeinfo": nodeinfo_only_routes("pleroma_2.0.json")[
            "GET /.well-known/nodeinfo"
        ],
        "GET /nodeinfo/2.0": Reply(502, b"bad gateway", content_type="text/plain"),
        "GET /api/v1/instance": Reply(body=pl.mastodon_instance_v1(1234, 56789)),
        "GET /api/v1/instance/peers": Reply(body=["a.example", "b.example"]),
    }


def platforms(workspace: Workspace) -> dict[str, str]:
    with sqlite3.connect(workspace.db) as db:
        return dict(db.execute("SELECT metric, platform FROM series WHERE period = ''"))


def collect(workspace: Workspace, moment: datetime) -> None:
    result = workspace.run("collect", TRACKER_NOW=iso(moment))
    assert result.returncode == 0, result.stderr


def test_a_fallback_run_does_not_relabel_a_nodeinfo_platform(
    workspace: Workspace, loopback: Loopback
) -> None:
    site = loopback.add(nodeinfo_only_routes("pleroma_2.0.json"))
    workspace.write_config({"collectors": {"fediverse": {"instances": [site.url]}}})
    collect(workspace, NOW)
    first = platforms(workspace)
    assert first and set(first.values()) == {"pleroma"}

    site.routes.clear()
    site.routes.update(fallback_routes())
    collect(workspace, NOW + timedelta(hours=1))
    with sqlite3.connect(workspace.db) as db:
        [(software,)] = db.execute(
            "SELECT software FROM attempts ORDER BY id DESC LIMIT 1"
        ).fetchall()
    assert software == "mastodon"  # the run was read through the fallback
    values = {
        (r["metric"], r["value"])
        for r in workspace.export()
        if r["observed_at"] == iso(NOW + timedelta(hours=1))
    }
    assert ("users_total", "1234") in values  # its numbers are kept...
    # ...and neither the old series nor the one it started (peers_total) say mastodon.
    after = platforms(workspace)
    assert set(after) == set(first) | {"peers_total"}
    assert set(after.values()) == {"pleroma"}
    assert {r["platform"] for r in workspace.export()} == {"pleroma"}

    site.routes.clear()
    site.routes.update(nodeinfo_only_routes("pleroma_2.0.json"))
    collect(workspace, NOW + timedelta(hours=2))
    assert set(platforms(workspace).values()) == {"pleroma"}

    # Replaying the archive (the fallback run included) changes no label and no row.
    before = workspace.export()
    result = workspace.cli("reparse", "--source", "fediverse")
    assert result.returncode == 0, result.stderr
    assert workspace.export() == before


def test_nodeinfo_evidence_corrects_a_guessed_platform(
    workspace: Workspace, loopback: Loopback
) -> None:
    site = loopback.add(fallback_routes())
    workspace.write_config({"collectors": {"fediverse": {"instances": [site.url]}}})
    collect(workspace, NOW)
    assert set(platforms(workspace).values()) == {"mastodon"}  # a guess, all there was

    site.routes.update(nodeinfo_only_routes("pleroma_2.0.json"))
    collect(workspace, NOW + timedelta(hours=1))
    assert set(platforms(workspace).values()) == {"pleroma"}
