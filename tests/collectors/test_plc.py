"""`plc` end to end: a fake PLC export on 127.0.0.1, `tracker collect --only plc`.

The fake export (tests/support/plc_export.py) serves a log with every edge case;
the expected day counts come from that log by its own rule, never from the parser.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from tests.conftest import Workspace, clean_env
from tests.support.bluesky.harness import ServersUnavailable, start_pds
from tests.support.loopback import Loopback, Reply, Request, Site
from tests.support.plc_export import FakeExport, Op, expected_counts, history
from tracker.config import PlcSettings
from tracker.loader import load_config
from tracker.lock import database_lock
from tracker.parsers import plc as p
from tracker.storage.engine import (
    _alembic_config,
    current_revision,
    head_revision,
    open_database,
    write_transaction,
)
from tracker.storage.plc_rows import rebuild

Counts = dict[tuple[date, str], int]


def configure(
    workspace: Workspace, site: Site, *, http: dict[str, Any] | None = None, **plc: Any
) -> None:
    section = {"directory": site.url, "pace": 0, "page_size": 5, **plc}
    section["http"] = {"deadline": 60, "timeout": 5, "retries": 1, **(http or {})}
    workspace.write_config({"collectors": {"plc": section}})


def sql(workspace: Workspace, query: str) -> list[Any]:
    engine = create_engine(workspace.db_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(query))]
    finally:
        engine.dispose()


def counts(workspace: Workspace) -> Counts:
    rows = sql(
        workspace,
        "SELECT s.target, s.platform, s.metric, s.period, p.observed_at, p.value, p.run_id "
        "FROM points p JOIN series s ON s.id = p.series_id WHERE s.source = 'plc'",
    )
    found: Counts = {}
    for target, platform, metric, period, observed_at, value, run_id in rows:
        assert (platform, metric, period, run_id) == ("bluesky", "accounts_created", "day", None)
        moment = datetime.fromtimestamp(observed_at, UTC)
        assert moment == datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
        found[(moment.date(), target)] = value
    return found


def cursor(workspace: Workspace) -> p.Cursor:
    rows = sql(
        workspace,
        "SELECT value FROM collector_state WHERE collector = 'plc' AND key = 'export_cursor'",
    )
    return p.Cursor.loads(rows[0][0] if rows else None)


def counted_up_to(ops: list[Op], until: p.Cursor) -> Counts:
    """What a correct collector has stored once its cursor is `until`."""
    assert until.last_time is not None
    last = until.last_time
    return expected_counts(
        [op for op in ops if op.created < last or (op.created == last and op.cid in until.boundary)]
    )


def collect(workspace: Workspace) -> str:
    result = workspace.cli("collect", "--only", "plc")
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("mode", ["inclusive", "exclusive", "seq"])
def test_pages_to_the_end_and_counts_each_day_and_family_once(
    workspace: Workspace, loopback: Loopback, mode: str
) -> None:
    ops = history()
    export = FakeExport(ops, inclusive=mode == "inclusive", seq=mode == "seq")
    site = loopback.add(export.routes())
    configure(workspace, site)
    out = collect(workspace)
    assert "plc: 1 targets: 1 ok, 0 failed, 0 skipped" in out
    want = expected_counts(ops)
    assert {family for _, family in want} == {"bsky", "bridge", "third_party"}
    assert counts(workspace) == want
    pages = len(export.asked)
    assert pages >= len(ops) // 5  # it really paged
    assert export.asked[0] is None
    # Every page is its own attempt, with its body archived.
    assert sql(workspace, "SELECT count(*) FROM fetches WHERE kind = 'export'") == [(pages,)]
    assert sql(
        workspace, "SELECT count(*) FROM fetches WHERE kind='export' AND payload_id IS NULL"
    ) == [(0,)]
    touched = sql(workspace, "SELECT sum(observations) FROM attempts WHERE source = 'plc'")
    assert touched[0][0] >= len(want)  # each page attempt says how many day totals it added to
    stop = sql(workspace, "SELECT error_detail FROM fetches WHERE kind = 'stopped'")
    assert len(stop) == 1 and "caught up" in stop[0][0]

    # A second run with nothing new asks once and adds nothing.
    collect(workspace)
    assert len(export.asked) == pages + 1 and counts(workspace) == want
    # Reparse rebuilds rejections and outcomes; the sums are left as they are.
    result = workspace.cli("reparse", "--source", "plc")
    assert result.returncode == 0, result.stderr
    assert counts(workspace) == want

    # New sign-ups later: only they are added.
    later = history(days=1, start=date(2024, 11, 20))
    export.ops.extend(later)
    if mode == "seq":
        for index, op in enumerate(later, start=1):
            op.seq = 1000 + index
    collect(workspace)
    assert counts(workspace) == {**want, **expected_counts(later)}


def test_malformed_lines_are_rejected_counted_and_kept(
    workspace: Workspace, loopback: Loopback
) -> None:
    ops = history(days=2)
    export = FakeExport(ops, garbage_lines={3: '{"did": 42}', 11: "this is not json"})
    site = loopback.add(export.routes())
    configure(workspace, site)
    collect(workspace)
    assert counts(workspace) == expected_counts(ops)
    # A bad line next to the page boundary is served (and rejected) again with the repeats.
    rows = sql(workspace, "SELECT raw_value, reason FROM rejections")
    reasons = {raw: reason.split(": ", 1)[1] for raw, reason in rows}
    assert reasons == {'{"did": 42}': "no did:plc: `did`", "this is not json": "not a JSON object"}
    assert all(reason.startswith("line ") for _, reason in rows)
    assert sql(workspace, "SELECT DISTINCT metric FROM rejections") == [("plc_operation",)]


def test_429_with_retry_after_is_honoured(workspace: Workspace, loopback: Loopback) -> None:
    ops = history(days=2)
    times: list[float] = []

    def limited(request: Request, number: int) -> Reply | None:
        times.append(time.monotonic())
        if number == 2:
            return Reply(429, {"error": "RateLimitExceeded"}, headers={"Retry-After": "1"})
        return None

    export = FakeExport(ops, faults=[limited])
    site = loopback.add(export.routes())
    configure(workspace, site)
    out = collect(workspace)
    assert "1 ok, 0 failed" in out
    assert times[3] - times[2] >= 0.95  # the retry waited as asked
    assert counts(workspace) == expected_counts(ops)
    assert sql(workspace, "SELECT max(attempts) FROM fetches WHERE kind = 'export'") == [(2,)]


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (Reply(503, "down for maintenance", content_type="text/plain"), "http_503"),
        (Reply(200, "<!doctype html><title>Oops</title>", content_type="text/html"), "not_json"),
        (Reply(200, "[]", content_type="application/json"), "bad_json"),
        (Reply(200, "", delay=3.0), "deadline"),
    ],
)
def test_a_broken_answer_is_a_failure_and_loses_nothing(
    workspace: Workspace, loopback: Loopback, reply: Reply, kind: str
) -> None:
    ops = history(days=2)
    broken = {"on": True}

    def fault(request: Request, number: int) -> Reply | None:
        return reply if number >= 3 and broken["on"] else None

    export = FakeExport(ops, faults=[fault])
    site = loopback.add(export.routes())
    http = {"retries": 0, "timeout": 1, "deadline": 2.5} if kind == "deadline" else {"retries": 0}
    configure(workspace, site, http=http)
    out = collect(workspace)
    assert "plc: 1 targets: 0 ok, 1 failed" in out
    failed = sql(workspace, "SELECT error_kind FROM attempts WHERE outcome = 'failed'")
    if kind == "deadline":  # a slow page: either its own timeout or the run's deadline
        assert failed[0][0] in ("deadline", "timeout")
    else:
        assert failed == [(kind,)]
    stopped_at = cursor(workspace)
    assert counts(workspace) == counted_up_to(ops, stopped_at)

    broken["on"] = False
    configure(workspace, site)
    collect(workspace)
    assert counts(workspace) == expected_counts(ops)


def test_the_deadline_stops_paging_cleanly_and_the_next_run_resumes(
    workspace: Workspace, loopback: Loopback
) -> None:
    ops = history(days=3)
    export = FakeExport(ops)
    site = loopback.add(export.routes())
    configure(workspace, site, pace=0.4, http={"deadline": 2.0, "timeout": 0.5})
    out = collect(workspace)
    assert "1 ok, 0 failed" in out
    note = sql(workspace, "SELECT error_detail FROM fetches WHERE kind = 'stopped'")
    assert "deadline" in note[0][0]
    first = len(export.asked)
    assert 2 <= first < len(ops) // 5
    assert counts(workspace) == counted_up_to(ops, cursor(workspace))
    configure(workspace, site, page_size=50)
    collect(workspace)
    assert counts(workspace) == expected_counts(ops)


def test_more_operations_in_one_millisecond_than_a_page_is_reported_not_looped(
    workspace: Workspace, loopback: Loopback
) -> None:
    ops = history(days=1)  # has two operations sharing one millisecond
    export = FakeExport(ops)
    configure(workspace, loopback.add(export.routes()), page_size=1)
    assert "0 ok, 1 failed" in collect(workspace)
    assert sql(workspace, "SELECT error_kind FROM attempts WHERE outcome = 'failed'") == [
        ("stuck",)
    ]
    assert counts(workspace) == counted_up_to(ops, cursor(workspace))


def test_max_pages_bounds_a_run(workspace: Workspace, loopback: Loopback) -> None:
    ops = history(days=2)
    export = FakeExport(ops)
    configure(workspace, loopback.add(export.routes()), max_pages=2)
    collect(workspace)
    assert len(export.asked) == 2
    assert counts(workspace) == counted_up_to(ops, cursor(workspace))


def test_sigkill_mid_backfill_loses_nothing_and_counts_nothing_twice(
    workspace: Workspace, loopback: Loopback
) -> None:
    ops = history(days=6, per_day=10)
    export = FakeExport(ops, delay=0.15)
    site = loopback.add(export.routes())
    configure(workspace, site)
    config = workspace.config
    process = subprocess.Popen(
        [sys.executable, "-m", "tracker", "collect", "--only", "plc", "--config", str(config)],
        cwd=workspace.root,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    committed = 0
    while time.monotonic() < deadline and committed < 5:
        time.sleep(0.05)
        if not workspace.db.exists():
            continue
        try:
            with sqlite3.connect(workspace.db) as db:
                committed = db.execute("SELECT count(*) FROM fetches WHERE kind = 'export'")
                committed = committed.fetchone()[0]
        except sqlite3.OperationalError:
            continue
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=10)
    assert process.returncode == -signal.SIGKILL
    killed_at = cursor(workspace)
    assert counts(workspace) == counted_up_to(ops, killed_at)
    asked_before = list(export.asked)
    assert 5 <= len(asked_before) < len(ops) // 5 - 2

    assert "1 ok, 0 failed" in collect(workspace)
    assert counts(workspace) == expected_counts(ops)
    asked_again = export.asked[len(asked_before) :]
    assert asked_again[0] == killed_at.after  # it went on from the committed page
    assert len(set(asked_before) & set(asked_again)) <= 1  # only the page in flight again


def test_the_plc_collector_is_listed(workspace: Workspace) -> None:
    workspace.write_config({"collectors": {"plc": {}}})
    lines = workspace.cli("collectors").stdout.splitlines()
    assert "plc: enabled" in lines
    assert any("collectors.plc.families" in line for line in lines)


def test_on_postgresql(pg_workspace: Workspace, loopback: Loopback) -> None:
    ops = history(days=2)
    export = FakeExport(ops, inclusive=False)
    configure(pg_workspace, loopback.add(export.routes()))
    collect(pg_workspace)
    collect(pg_workspace)
    assert counts(pg_workspace) == expected_counts(ops)
    assert not pg_workspace.db.exists()


def test_rebuild_recounts_every_archived_page(workspace: Workspace, loopback: Loopback) -> None:
    ops = history(days=3)
    export = FakeExport(ops)
    configure(workspace, loopback.add(export.routes()))
    collect(workspace)
    done = cursor(workspace)
    settings = load_config(workspace.config)
    plc_settings = settings.collectors["plc"]
    assert isinstance(plc_settings, PlcSettings)
    engine = open_database(settings.database)
    try:
        with engine.begin() as connection:  # a counting bug once stored wrong sums
            connection.execute(text("UPDATE points SET value = value * 7"))
            connection.execute(text("DELETE FROM collector_state"))
        pages = rebuild(engine, plc_settings)
    finally:
        engine.dispose()
    assert pages == len(export.asked)  # the last one, nothing new, is archived too
    assert counts(workspace) == expected_counts(ops)
    assert cursor(workspace) == done


def test_rebuild_command_errors_are_one_line_and_change_nothing(
    workspace: Workspace, loopback: Loopback
) -> None:
    ops = history(days=2)
    configure(workspace, loopback.add(FakeExport(ops).routes()))
    collect(workspace)
    with database_lock(workspace.db_url):  # a collection is running
        held = workspace.cli("plc", "rebuild")
    assert held.returncode == 75
    assert held.stderr.startswith("error: another collection holds the lock")
    assert held.stderr.count("\n") == 1
    with sqlite3.connect(workspace.db) as db:  # as if a page's body had been pruned
        db.execute("UPDATE fetches SET payload_id = NULL WHERE id = (SELECT min(id) FROM fetches)")
    pruned = workspace.cli("plc", "rebuild")
    assert pruned.returncode == 1
    assert "was pruned: cannot rebuild" in pruned.stderr and pruned.stderr.count("\n") == 1
    assert counts(workspace) == expected_counts(ops)


def test_migration_0006_round_trip(workspace: Workspace, loopback: Loopback) -> None:
    export = FakeExport(history(days=1))
    configure(workspace, loopback.add(export.routes()))
    collect(workspace)
    engine = open_database(workspace.db_url)
    try:
        with write_transaction(engine) as connection:
            migrations = _alembic_config()
            migrations.attributes["connection"] = connection
            command.downgrade(migrations, "0005")
        assert current_revision(engine) == "0005"
        assert "collector_state" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
    engine = open_database(workspace.db_url)  # upgrades again
    try:
        assert current_revision(engine) == head_revision()
        assert "collector_state" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
    # The table came back empty while the counts stayed: paging from the start would
    # count everything twice, so the collector refuses and says how to recover.
    assert "0 ok, 1 failed" in collect(workspace)
    assert "rebuild" in sql(workspace, "SELECT error_detail FROM attempts ORDER BY id DESC")[0][0]
    rebuilt = workspace.cli("plc", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "archived pages recounted" in rebuilt.stdout
    assert "1 ok, 0 failed" in collect(workspace)
    assert counts(workspace) == expected_counts(export.ops)


def test_against_the_real_plc_directory(
    workspace: Workspace, postgres_url: str, tmp_path: Path
) -> None:
    """`@did-plc/server` (on PostgreSQL: its in-memory database cannot export) behind a
    real `@atproto/pds`: accounts created on the PDS are counted on their day, in the
    family the config gives the PDS's host (`localhost` here, never connected to)."""
    plc_db = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        servers = start_pds(tmp_path / "servers", invite_required=False, plc_database=plc_db)
    except ServersUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        before = datetime.now(UTC).date()
        dids = {servers.create_account(f"plcuser{n}", None).did for n in range(3)}
        after = datetime.now(UTC).date()
        assert all(did.startswith("did:plc:") for did in dids)
        section = {
            "directory": servers.plc_url,
            "pace": 0,
            "families": {"bsky": ["localhost"], "bridge": ["atproto.brid.gy"]},
        }
        workspace.write_config({"collectors": {"plc": section}})
        assert "1 ok, 0 failed" in collect(workspace)
        found = counts(workspace)
        assert sum(found.values()) == len(dids) == 3
        assert {family for _, family in found} == {"bsky"}
        assert {day for day, _ in found} <= {before, after}
        servers.create_account("plcuser9", None)
        assert "1 ok, 0 failed" in collect(workspace)
        assert sum(counts(workspace).values()) == 4
        # The real server reads `after` as a time, strictly after: asked from a
        # millisecond before the last operation, it repeats that one, and only that.
        assert sql(workspace, "SELECT count(*) FROM fetches WHERE kind = 'export'") == [(4,)]
    finally:
        servers.stop()
