"""The suite's flows on a real PostgreSQL server (psycopg 3), through the real CLI.

The end-to-end tests of collect, export/import, reparse and report are imported
below and run here a second time, unchanged, with this module's `workspace`
fixture: every command of theirs then uses a fresh PostgreSQL database through
`TRACKER_DB_URL`. (Tests that open the SQLite file directly are not imported.)
The tests written here cover what those do not: status, the schema, and a report
identical on both engines. `tracker schedule` and the collection lock on PostgreSQL
are tested in tests/test_schedule_postgres.py; `db copy` and `db prune` on both
engines in tests/storage/.

The server is `$TRACKER_TEST_POSTGRES_URL` (.ci/run starts one) or a throwaway
cluster this session starts; without one these tests fail, they never skip.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, delete, text

from tests.collectors.test_fediverse import (
    test_collect_and_export_match_what_servers_published,
    test_second_run_updates_weekly_buckets_and_adds_new_readings,
)
from tests.conftest import Workspace
from tests.report.test_report import (
    test_a_single_observation_is_sparse_not_a_crash,
    test_empty_database_gives_a_report_that_says_so,
)
from tests.support.datasets import instances_social, joinmastodon, write_csv
from tests.support.loopback import Loopback, Reply
from tests.support.sites import MastodonSpec, iso
from tests.test_exchange import (
    test_a_bad_row_rejects_the_whole_file,
    test_empty_database_exports_a_header_and_an_empty_array,
    test_export_to_file,
    test_json_and_filters,
    test_missing_file,
    test_round_trip_is_exact_and_ordered,
    test_wrong_header_is_refused,
    ws,
)
from tests.test_reparse import collected, test_a_parser_fix_changes_exactly_what_it_fixes
from tracker.storage.engine import head_revision, open_database
from tracker.storage.schema import metadata, points

REUSED = (
    test_collect_and_export_match_what_servers_published,
    test_second_run_updates_weekly_buckets_and_adds_new_readings,
    test_a_single_observation_is_sparse_not_a_crash,
    test_empty_database_gives_a_report_that_says_so,
    test_a_bad_row_rejects_the_whole_file,
    test_empty_database_exports_a_header_and_an_empty_array,
    test_export_to_file,
    test_json_and_filters,
    test_missing_file,
    test_round_trip_is_exact_and_ordered,
    test_wrong_header_is_refused,
    test_a_parser_fix_changes_exactly_what_it_fixes,
    ws,
    collected,
)
"""Imported to run here on PostgreSQL (named, so linters see them used)."""

NOW = datetime(2022, 11, 9, 12, 0, tzinfo=UTC)


@pytest.fixture
def workspace(pg_workspace: Workspace) -> Iterator[Workspace]:
    """Every workspace in this module is on PostgreSQL; none may fall back to SQLite."""
    yield pg_workspace
    assert not pg_workspace.db.exists(), "a command wrote the SQLite file, not PostgreSQL"


def test_the_workspace_really_is_postgresql(workspace: Workspace) -> None:
    workspace.write_config()
    assert workspace.db_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    result = workspace.cli("db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert f"upgraded from empty to {head_revision()}" in result.stdout
    engine = create_engine(workspace.db_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version()")).scalar().startswith("PostgreSQL")  # type: ignore[union-attr]
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()
    assert diff == []


def test_status_shows_runs_and_target_health(workspace: Workspace, loopback: Loopback) -> None:
    good = loopback.add(MastodonSpec().routes(NOW))
    broken = loopback.add({"*": Reply(503, b"down", content_type="text/plain")})
    workspace.write_config(
        {"collectors": {"fediverse": {"instances": [good.url, broken.url]}}, "http": {"retries": 0}}
    )
    assert workspace.cli("status").stdout.splitlines()[1] == "no runs yet: try `tracker collect`"
    result = workspace.run("collect", TRACKER_NOW=iso(NOW))
    assert result.returncode == 0, result.stderr
    assert "fediverse: 2 targets: 1 ok, 1 failed, 0 skipped" in result.stdout

    status = workspace.cli("status")
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0] == f"database: {workspace.db_url}"
    assert (
        lines[2].startswith("  #1 2022-11-09 12:00:00Z") and "fediverse partial: 1 ok" in lines[2]
    )
    good_line = next(line for line in lines if good.url.removeprefix("http://") + ":" in line)
    assert "last success 2022-11-09 12:00:00Z" in good_line
    bad_line = next(line for line in lines if broken.url.removeprefix("http://") + ":" in line)
    assert "last success never; last error 2022-11-09 12:00:00Z http_503" in bad_line


def test_reparse_brings_deleted_observations_back(workspace: Workspace, loopback: Loopback) -> None:
    site = loopback.add(MastodonSpec().routes(NOW))
    workspace.write_config({"collectors": {"fediverse": {"instances": [site.url]}}})
    assert workspace.cli("collect", TRACKER_NOW=iso(NOW)).returncode == 0
    before = workspace.export()
    engine = open_database(workspace.db_url)
    with engine.begin() as connection:
        connection.execute(delete(points))
    engine.dispose()
    assert workspace.export() == []
    result = workspace.cli("reparse")
    assert result.returncode == 0, result.stderr
    assert "reparsed 1 attempts" in result.stdout
    assert workspace.export() == before


def test_report_is_the_same_on_both_engines(workspace: Workspace, tmp_path: Path) -> None:
    """Years of real series, imported into PostgreSQL and into SQLite: the same summary."""
    csv_file = write_csv(tmp_path / "real.csv", joinmastodon, instances_social)
    on_sqlite = Workspace(tmp_path / "sqlite")
    on_sqlite.root.mkdir()
    summaries = []
    for each in (workspace, on_sqlite):
        each.write_config()
        assert each.cli("import", str(csv_file)).returncode == 0
        out = each.root / "report"
        result = each.cli("report", "--output", str(out), TRACKER_NOW="2025-10-15T00:00:00Z")
        assert result.returncode == 0, result.stderr
        summaries.append(json.loads((out / "summary.json").read_text(encoding="utf-8")))
    assert summaries[0]["empty"] is False
    assert summaries[0] == summaries[1]
