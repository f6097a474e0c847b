"""`tracker crawl` on a generated 200-server fediverse (tests/support/graph.py): the set it
finds and measures is exactly what the graph's definition says a correct crawler must."""

from __future__ import annotations

import sqlite3

from tests.conftest import Workspace
from tests.support.graph import serve_graph_in_thread
from tests.support.loopback import Loopback


def test_crawl_of_a_generated_graph_finds_the_reachable_and_measures_the_measurable(
    workspace: Workspace, loopback: Loopback
) -> None:
    with serve_graph_in_thread(200, seed=7, loopback=loopback) as served:
        graph = served.graph
        workspace.write_config(
            {
                "http": {"timeout": 2, "deadline": 6, "retries": 0},
                "collectors": {
                    "fediverse": {
                        "discover": {
                            "seeds": graph.seed_urls,
                            "concurrency": 50,
                            "requests_per_second": 50,
                        }
                    }
                },
            }
        )
        result = workspace.run("crawl", TRACKER_NOW="2022-11-09T12:00:00Z", timeout=300)
        assert result.returncode == 0, result.stderr
        with sqlite3.connect(workspace.db) as db:
            found = {host for (host,) in db.execute("SELECT host FROM servers")}
            measured = {
                target
                for (target,) in db.execute(
                    "SELECT DISTINCT target FROM observations "
                    "WHERE source = 'fediverse' AND metric = 'users_total'"
                )
            }
        assert found == graph.reachable()
        assert measured == graph.measurable()
        assert not found & graph.islands
        assert not served.contacted() & (graph.islands | graph.shadows)
        assert served.probe_connections() == {}
