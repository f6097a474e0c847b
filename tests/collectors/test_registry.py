"""What adding a platform takes (README "Adding a platform"), checked for every registered one.

A collector module, a parser module with the one parser contract, a fixture folder
(tests/support/test_payloads.py), their tests, and the collector's own facts: its
default timetable and the words and looks the charts use. Nothing else lists it.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tracker.collectors import registry
from tracker.collectors.base import Collector
from tracker.model import Fetched, Parsed
from tracker.timetable import trigger_for

TESTS = Path(__file__).resolve().parents[1]
COLLECTORS = {collector.name: collector for collector in registry.COLLECTORS}


def module_name(collector: type[Collector[Any]]) -> str:
    """`tracker.collectors.<x>` -> `x`: the parser module and the tests share it."""
    return collector.__module__.rpartition(".")[2]


def test_names_are_unique() -> None:
    assert len(COLLECTORS) == len(registry.COLLECTORS)


CONTRACT = [
    ("target", "str", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    ("records", "Sequence[Fetched]", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    ("observed_at", "datetime", inspect.Parameter.POSITIONAL_OR_KEYWORD),
]


def contract_problems(parse: Any) -> list[str]:
    """`parse(target, records, observed_at, *, options) -> Parsed`: the collector's `parse`
    and `tracker reparse` call it; options are keyword-only, taken from the settings."""
    signature = inspect.signature(parse)
    parameters = list(signature.parameters.values())
    problems = []
    if [(p.name, p.annotation, p.kind) for p in parameters[:3]] != CONTRACT:
        problems.append("the first parameters are not (target, records, observed_at)")
    if any(p.kind is not inspect.Parameter.KEYWORD_ONLY for p in parameters[3:]):
        problems.append("options are not keyword-only")
    if signature.return_annotation != "Parsed":
        problems.append("does not return Parsed")
    return problems


@pytest.mark.parametrize("name", sorted(COLLECTORS))
def test_parser_module_has_the_one_parser_contract(name: str) -> None:
    parsers = importlib.import_module(f"tracker.parsers.{module_name(COLLECTORS[name])}")
    assert contract_problems(parsers.parse) == []


def test_the_contract_check_rejects_another_shape() -> None:
    def odd(records: Sequence[Fetched], families: dict[str, str]) -> list[Parsed]:
        return []

    def positional_option(
        target: str, records: Sequence[Fetched], observed_at: datetime, pages: int
    ) -> Parsed:
        return Parsed()

    assert len(contract_problems(odd)) == 2
    assert contract_problems(positional_option) == ["options are not keyword-only"]


@pytest.mark.parametrize("name", sorted(COLLECTORS))
def test_collector_and_parser_have_their_tests(name: str) -> None:
    module = module_name(COLLECTORS[name])
    assert (TESTS / "parsers" / f"test_{module}.py").is_file()
    assert (TESTS / "collectors" / f"test_{module}.py").is_file()


@pytest.mark.parametrize("name", sorted(COLLECTORS))
def test_collector_declares_its_facts(name: str) -> None:
    collector = COLLECTORS[name]
    assert collector.summary and collector.metrics
    assert collector.about.caption.strip()
    if collector.default_schedule is not None:
        assert trigger_for(collector.default_schedule).expression == collector.default_schedule
    for platform, look in collector.platforms.items():
        assert platform == platform.lower() and look.name


def test_default_schedules_come_from_the_collectors() -> None:
    from tracker.schedule_plan import CRAWL, DEFAULT_SCHEDULE, REPORT

    owned = {name: c.default_schedule for name, c in COLLECTORS.items() if c.default_schedule}
    assert {k: v for k, v in DEFAULT_SCHEDULE.items() if k not in (CRAWL, REPORT)} == owned
    assert set(owned) == set(COLLECTORS)  # every shipped collector runs by default


def test_parse_is_called_with_the_collectors_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """The collector passes its settings as the options (here: bluesky's `max_pages`)."""
    from tracker.collectors.bluesky import BlueskyCollector, BlueskySettings
    from tracker.config import HttpSettings
    from tracker.parsers import bluesky

    seen: dict[str, Any] = {}

    def spy(
        target: str, records: Sequence[Fetched], observed_at: datetime, **options: Any
    ) -> Parsed:
        seen.update(options, target=target)
        return Parsed()

    monkeypatch.setattr(bluesky, "parse", spy)
    collector = BlueskyCollector(BlueskySettings(max_pages=7), HttpSettings())
    collector.parse("pds.example", [], datetime(2026, 1, 1))
    assert seen == {"target": "pds.example", "max_pages": 7}
