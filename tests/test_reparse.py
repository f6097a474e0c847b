"""`tracker reparse` rebuilds observations from the archive, without the network."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import Workspace
from tests.support.loopback import Loopback
from tests.support.sites import MastodonSpec, iso
from tracker.parsers import fediverse

NOW = datetime(2022, 11, 9, 12, 0, tzinfo=UTC)


@pytest.fixture
def collected(workspace: Workspace, loopback: Loopback) -> Workspace:
    site = loopback.add(MastodonSpec().routes(NOW))
    workspace.write_config({"collectors": {"fediverse": {"instances": [site.url]}}})
    assert workspace.cli("collect", TRACKER_NOW=iso(NOW)).returncode == 0
    later = NOW.replace(hour=18)
    assert workspace.cli("collect", TRACKER_NOW=iso(later)).returncode == 0
    loopback.sites.remove(site)
    site.server.close()  # type: ignore[union-attr]  # from now on the server is gone
    return workspace


def test_lost_observations_come_back_from_the_archive(collected: Workspace) -> None:
    before = collected.export()
    with sqlite3.connect(collected.db) as db:
        db.execute("DELETE FROM points")
    assert collected.export() == []
    result = collected.cli("reparse")
    assert result.returncode == 0, result.stderr
    assert "reparsed 2 attempts" in result.stdout
    assert collected.export() == before


def test_a_parser_fix_changes_exactly_what_it_fixes(
    collected: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {tuple(r.values()) for r in collected.export()}
    original = fediverse.parse

    def fixed(target: str, records: Any, observed_at: datetime) -> Any:
        parsed = original(target, records, observed_at)
        parsed.observations = [
            dataclasses.replace(o, value=o.value + 1) if o.metric == "users_total" else o
            for o in parsed.observations
        ]
        return parsed

    monkeypatch.setattr(fediverse, "parse", fixed)
    assert collected.cli("reparse", "--source", "fediverse").returncode == 0
    after = {tuple(r.values()) for r in collected.export()}
    changed_before = {r for r in before if r[3] == "users_total"}
    changed_after = {r for r in after if r[3] == "users_total"}
    assert before - changed_before == after - changed_after
    assert {int(r[6]) for r in changed_after} == {int(r[6]) + 1 for r in changed_before}
    assert len(after) == len(before)
