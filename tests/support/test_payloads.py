"""The test data itself: fixtures stand on their own, dataset tests never hide a skip in CI."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support import payloads as pl
from tracker.collectors import registry

HOST = re.compile(r"(?:https?|wss?)://([\w-]+(?:\.[\w-]+)+)|[\w.+-]+@([\w-]+(?:\.[\w-]+)+)")
NOT_HOSTS = {"nodeinfo.diaspora.software"}  # a NodeInfo `rel` identifier, never fetched


def strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in [key, *strings(item)]]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return [value] if isinstance(value, str) else []


def fixture_files() -> list[Path]:
    return sorted(pl.FIXTURES.rglob("*.json"))


def test_every_payload_the_tests_name_is_in_the_repository() -> None:
    names = {path.relative_to(pl.FIXTURES).as_posix() for path in fixture_files()}
    assert {
        "fediverse/nodeinfo/mastodon_2.0.json",
        "tumblr/tagged.json",
        "bluesky/listHosts_relay.json",
    } <= names
    assert pl.PAYLOADS == pl.FIXTURES  # not ../shared: a fresh clone has what it needs


NOT_FIXTURES = {"README.md", "__init__.py", "__pycache__"}
"""Entries of a fixture folder that are not fixtures: the notes and Python's package files."""


def layout_problems(root: Path, collectors: list[str]) -> list[str]:
    """What breaks `<root>/<collector>/`: one non-empty folder per collector, nothing else.

    A folder per registered collector is where a new platform's payloads go, and a
    folder without a collector is data no collector test can be reading.
    """
    problems = []
    for name in collectors:
        folder = root / name
        if not folder.is_dir():
            problems.append(f"collector {name!r} has no fixture folder {folder}")
            continue
        files = [
            path
            for path in folder.rglob("*")
            if path.is_file()
            and path.name not in NOT_FIXTURES
            and "__pycache__" not in path.relative_to(folder).parts
        ]
        if not files:
            problems.append(f"the fixture folder of collector {name!r} is empty: {folder}")
    for entry in sorted(root.iterdir()):
        if entry.name not in NOT_FIXTURES and entry.name not in collectors:
            problems.append(f"{entry} belongs to no collector (known: {', '.join(collectors)})")
    return problems


def test_one_fixture_folder_per_collector() -> None:
    assert registry.names()  # the check below is empty without collectors
    assert layout_problems(pl.FIXTURES, registry.names()) == []


def test_the_layout_check_finds_a_missing_an_empty_and_a_stray_folder(tmp_path: Path) -> None:
    for name in ("fediverse", "plc", "empty"):
        (tmp_path / name).mkdir()
    (tmp_path / "fediverse" / "nodeinfo").mkdir()
    (tmp_path / "fediverse" / "nodeinfo" / "mastodon_2.0.json").write_text("{}")
    (tmp_path / "plc" / "README.md").write_text("notes only")
    (tmp_path / "README.md").write_text("the layout")
    (tmp_path / "peers").mkdir()
    assert layout_problems(tmp_path, ["fediverse"]) == [
        f"{tmp_path / 'empty'} belongs to no collector (known: fediverse)",
        f"{tmp_path / 'peers'} belongs to no collector (known: fediverse)",
        f"{tmp_path / 'plc'} belongs to no collector (known: fediverse)",
    ]
    assert layout_problems(tmp_path, ["fediverse", "plc", "empty", "peers", "tumblr"]) == [
        f"the fixture folder of collector 'plc' is empty: {tmp_path / 'plc'}",
        f"the fixture folder of collector 'empty' is empty: {tmp_path / 'empty'}",
        f"the fixture folder of collector 'peers' is empty: {tmp_path / 'peers'}",
        f"collector 'tumblr' has no fixture folder {tmp_path / 'tumblr'}",
    ]


@pytest.mark.parametrize(
    "path", fixture_files(), ids=lambda p: p.relative_to(pl.FIXTURES).as_posix()
)
def test_fixture_hosts_are_reserved_example_names(path: Path) -> None:
    hosts = {
        (match.group(1) or match.group(2)).lower()
        for text in strings(json.loads(path.read_text(encoding="utf-8")))
        for match in HOST.finditer(text)
    }
    bad = {h for h in hosts - NOT_HOSTS if not h.endswith(".example") and h != "example"}
    assert not bad, f"{path.name} names hosts outside .example: {sorted(bad)}"


def test_absent_datasets_skip_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(pl, "DATASETS", tmp_path / "absent" / "datasets")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        pl.dataset("mastodonusercount_hourly_2018-08_to_2022-11-07.csv")
    assert str(skipped.value).startswith("not run: $TRACKER_SHARED/datasets absent")
    assert "\n" not in str(skipped.value)


def test_absent_datasets_fail_under_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(pl, "DATASETS", tmp_path / "absent" / "datasets")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        pl.require_datasets()


def test_a_missing_file_in_present_datasets_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(pl, "DATASETS", tmp_path)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(FileNotFoundError):
        pl.dataset("no_such_series.csv")
