"""`tracker collect` must store only the listed server's own numbers, and never connect to
an address the address rule refuses, whatever the config, a link or a redirect says."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from tests.conftest import Workspace
from tests.support import payloads as pl
from tests.support.hostile import collect_and_read
from tests.support.loopback import (
    Loopback,
    Reply,
    probe_connections,
    probe_urls,
    start_probes,
)
from tests.support.sites import MastodonSpec, iso
from tracker.targets import parse_target

NOW = datetime(2022, 11, 9, 12, 0, tzinfo=UTC)


def key(url: str) -> str:
    return url.removeprefix("http://")


def test_unlisted_loopback_targets_are_refused_without_a_connection(
    workspace: Workspace, loopback: Loopback
) -> None:
    probes = start_probes(loopback)
    healthy_spec = MastodonSpec()
    healthy = loopback.add(healthy_spec.routes(NOW))
    forbidden = probe_urls(probes)
    workspace.write_config({"collectors": {"fediverse": {"instances": [healthy.url, *forbidden]}}})
    run = collect_and_read(workspace, TRACKER_NOW=iso(NOW))
    assert run["result"].returncode == 0, run["result"].stderr
    for url in forbidden:
        outcome, kind, detail = run["attempts"][parse_target(url).key]
        assert (outcome, kind) == ("failed", "forbidden_address"), (url, detail)
    assert probe_connections(probes) == {}
    stored = {row["target"] for row in workspace.export()}
    assert stored == {key(healthy.url)}  # the probes' 424242 is nowhere


def test_nodeinfo_link_to_another_host_stores_nothing_from_it(
    workspace: Workspace, loopback: Loopback
) -> None:
    """A server whose NodeInfo points at a bigger server must not get its numbers."""
    big = loopback.add(MastodonSpec(users=987_654).routes(NOW))
    liar = loopback.add(
        {
            "GET /.well-known/nodeinfo": Reply(body=pl.wellknown(big.url, "2.0")),
            "GET /api/v2/instance": Reply(404, {"error": "Record not found"}),
            "GET /api/v1/instance": Reply(404, {"error": "Record not found"}),
        }
    )
    redirector = loopback.add(
        {
            "GET /.well-known/nodeinfo": Reply(
                301, b"", headers={"Location": big.url + "/.well-known/nodeinfo"}
            )
        }
    )
    workspace.write_config(
        {"collectors": {"fediverse": {"instances": [liar.url, redirector.url, big.url]}}}
    )
    run = collect_and_read(workspace, TRACKER_NOW=iso(NOW))
    assert run["result"].returncode == 0, run["result"].stderr

    by_target: dict[str, set[str]] = {}
    for row in workspace.export():
        by_target.setdefault(row["target"], set()).add(row["metric"])
    assert key(liar.url) not in by_target and key(redirector.url) not in by_target
    assert "users_total" in by_target[key(big.url)]

    log = {(target, kind): error for target, kind, _, error, _, _ in run["fetch_log"]}
    assert log[(key(liar.url), "nodeinfo")] == "foreign_host"
    assert log[(key(redirector.url), "nodeinfo_links")] == "foreign_host"
    big_paths = [request.path for request in big.requests]
    assert big_paths.count("/nodeinfo/2.0") == 1  # asked once, by its own target only

    with sqlite3.connect(workspace.db) as db:
        [(final_url,)] = db.execute(
            "SELECT f.final_url FROM fetches f JOIN attempts a ON a.id = f.attempt_id "
            "WHERE a.target = ? AND f.kind = 'nodeinfo_links'",
            (key(redirector.url),),
        )
    assert final_url == big.url + "/.well-known/nodeinfo"
