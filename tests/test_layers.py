"""The import contracts: no module imports a higher layer, and there is no import circle.

Read from the source (every `import`, late ones inside functions included; only
`if TYPE_CHECKING:` blocks are left out, as they never run), so a late import
cannot hide an upward dependency. The layers, lowest first:

- low modules: errors, clock, sanity, targets (host names), hosts (what a host name spells:
  an address, this machine), instants (time as text), timetable (the `schedule:`
  expressions), model (the values that pass between the layers);
- config (the models of config.yaml), then parsers, storage, http;
- collectors, then loader (reads config.yaml and asks the collector registry) and catalogue
  (what the charts say about each source and platform, read from the collectors),
  runner/collect/crawl/report/schedule and the CLI on top.

No exception is left: `KNOWN_UPWARD` and `KNOWN_SQL_IN_COLLECTORS` are empty, and an
entry added there must name the import and why it cannot move yet.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tracker"

LOW = {"tracker.errors", "tracker.clock", "tracker.sanity", "tracker.targets", "tracker.hosts"}
LOW |= {"tracker.timetable", "tracker.model", "tracker.instants"}
"""Import no tracker module outside this set: every layer may use them."""

KNOWN_UPWARD: dict[tuple[str, str], str] = {}
"""Upward imports not yet moved: (importer, imported) and why."""

KNOWN_SQL_IN_COLLECTORS: dict[str, str] = {}
"""Collectors that still run SQL themselves instead of asking tracker.storage."""


@dataclass(frozen=True)
class Import:
    module: str
    """The importing module."""
    target: str
    """What it imports: a tracker module (resolved to the file) or a top-level package."""
    line: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    _module_name(path): path
    for path in sorted(PACKAGE.rglob("*.py"))
    if "migrations" not in path.relative_to(PACKAGE).parts
}


def _resolve(name: str) -> str:
    """`tracker.x.y` names module `tracker.x.y` if it exists, else the nearest package."""
    while name not in MODULES and "." in name:
        name = name.rpartition(".")[0]
    return name


def _imports(module: str) -> Iterator[Import]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(inner) for inner in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = node.module
            names = (
                [f"{base}.{alias.name}" for alias in node.names]
                if base == "tracker" or (base.startswith("tracker."))
                else [base]
            )
        else:
            continue
        for name in names:
            target = _resolve(name) if name.split(".")[0] == "tracker" else name.split(".")[0]
            if target != module:
                yield Import(module, target, node.lineno)


IMPORTS = [found for module in MODULES for found in _imports(module)]


def _in(module: str, *layers: str) -> bool:
    return any(module == layer or module.startswith(layer + ".") for layer in layers)


def _violations(
    importers: tuple[str, ...], allowed: set[str] | None, forbidden: tuple[str, ...]
) -> Iterator[str]:
    for found in IMPORTS:
        if not _in(found.module, *importers) or (found.module, found.target) in KNOWN_UPWARD:
            continue
        if not found.target.startswith("tracker"):
            continue
        if (allowed is not None and not _in(found.target, *allowed, *importers)) or _in(
            found.target, *forbidden
        ):
            yield f"{found.module} line {found.line} imports {found.target}"


HIGH = ("tracker.loader", "tracker.cli", "tracker.schedule")
HIGH += ("tracker.schedule_plan", "tracker.locked", "tracker.collect", "tracker.runner")
HIGH += ("tracker.report", "tracker.charts", "tracker.analysis", "tracker.crawl")
HIGH += ("tracker.catalogue",)

CONTRACTS = {
    "low modules import only each other": (tuple(LOW), set(LOW), ()),
    "config imports no tracker module but the low ones": (("tracker.config",), set(LOW), ()),
    "parsers import no http, storage or collectors": (
        ("tracker.parsers",),
        {*LOW, "tracker.config"},
        ("tracker.http", "tracker.storage", "tracker.collectors"),
    ),
    "storage imports no http, collectors or anything above": (
        ("tracker.storage",),
        {*LOW, "tracker.config", "tracker.parsers"},
        (),
    ),
    "http imports no storage, parsers or collectors": (
        ("tracker.http",),
        {*LOW, "tracker", "tracker.config"},
        (),
    ),
    "collectors import nothing above them": (("tracker.collectors",), None, HIGH),
}


@pytest.mark.parametrize("contract", sorted(CONTRACTS))
def test_no_module_imports_a_higher_layer(contract: str) -> None:
    importers, allowed, forbidden = CONTRACTS[contract]
    assert list(_violations(importers, allowed, forbidden)) == []


def test_collectors_leave_sql_to_storage() -> None:
    found = {
        f"{each.module} line {each.line}"
        for each in IMPORTS
        if _in(each.module, "tracker.collectors")
        and each.target == "sqlalchemy"
        and each.module not in KNOWN_SQL_IN_COLLECTORS
    }
    assert found == set()
    still = {
        each.module
        for each in IMPORTS
        if each.module in KNOWN_SQL_IN_COLLECTORS and each.target == "sqlalchemy"
    }
    assert still == set(KNOWN_SQL_IN_COLLECTORS), "drop the exceptions that no longer apply"
    # The check sees SQLAlchemy where it is imported (storage), so an empty `found` means none.
    assert any(
        _in(each.module, "tracker.storage") and each.target == "sqlalchemy" for each in IMPORTS
    )


def test_no_import_circle() -> None:
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for each in IMPORTS:
        if each.target in MODULES and (each.module, each.target) not in KNOWN_UPWARD:
            graph[each.module].add(each.target)
    circles = _circles(graph)
    assert circles == [], "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_circle_check_finds_a_circle() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("module", ["tracker.config", "tracker.schedule"])
def test_config_and_schedule_stay_small(module: str) -> None:
    """Issue 13: each under 400 lines, so each keeps one job."""
    assert len(MODULES[module].read_text(encoding="utf-8").splitlines()) < 400
