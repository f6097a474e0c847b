"""Run `tracker collect` against a hostile fleet and read back what it recorded.

The hostile tests of every collector ask the same questions of the database
afterwards (each target's outcome, the rejected values, the fetch log), so they
read it the same way.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tests.support.loopback import Reply, Request

if TYPE_CHECKING:
    from tests.conftest import Workspace


class Flaky:
    """429 with Retry-After (and the platform's own error body) the first time, then
    the real answer: a fixed reply or a route handler."""

    def __init__(
        self, answer: Reply | Callable[[Request], Reply], retry_after: str, body: Any = b""
    ) -> None:
        self.answer = answer
        self.retry_after = retry_after
        self.body = body
        self.calls = 0

    def __call__(self, request: Request) -> Reply:
        self.calls += 1
        if self.calls == 1:
            return Reply(429, self.body, headers={"Retry-After": self.retry_after})
        return self.answer if isinstance(self.answer, Reply) else self.answer(request)


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
