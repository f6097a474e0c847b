"""Run `tracker collect` against a hostile fleet and read back what it recorded.

The hostile tests of every collector ask the same questions of the database
afterwards (each target's outcome, the rejected values, the fetch log), so they
read it the same way.
"""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.conftest import Workspace


def collect_and_read(workspace: Workspace, **env: str) -> dict[str, Any]:
    """`result`, `elapsed` (s), `attempts` {target: (outcome, kind, detail)}, `rejections`
    [(target, metric, raw value, reason)] and `fetch_log` [(target, kind, status,
    error kind, tries, elapsed ms)], each target's requests in the order made."""
    started = time.monotonic()
    result = workspace.run("collect", **env)
    elapsed = time.monotonic() - started
    with sqlite3.connect(workspace.db) as db:
        attempts = {
            target: (outcome, kind, detail)
            for target, outcome, kind, detail in db.execute(
                "SELECT target, outcome, error_kind, error_detail FROM attempts"
            )
        }
        rejections = db.execute(
            "SELECT a.target, r.metric, r.raw_value, r.reason FROM rejections r "
            "JOIN attempts a ON a.id = r.attempt_id ORDER BY r.id"
        ).fetchall()
        fetch_log = db.execute(
            "SELECT a.target, f.kind, f.status, f.error_kind, f.attempts, f.elapsed_ms "
            "FROM fetches f JOIN attempts a ON a.id = f.attempt_id ORDER BY f.attempt_id, f.seq"
        ).fetchall()
    return {
        "result": result,
        "elapsed": elapsed,
        "attempts": attempts,
        "rejections": rejections,
        "fetch_log": fetch_log,
    }
