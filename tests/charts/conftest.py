"""Databases built as a user would (`tracker import`), analysed, and every chart rendered once.

Rendering is the slow part, so each database's charts are drawn and saved once per
session, with the warnings matplotlib emitted while saving kept for the tests.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.charts import synthetic
from tests.conftest import Workspace
from tests.support import datasets
from tracker.analysis.pipeline import Analysis, analyse
from tracker.charts import Chart, active, draw_all, growth, japan, overview, share
from tracker.charts.figure import DPI
from tracker.config import DEFAULT_EVENTS, ReportSettings
from tracker.storage.engine import open_database

SPARSE_ROW = "fediverse,mastodon,mstdn.jp,users_total,,2024-05-01T06:00:00Z,301234\n"


@dataclass
class Rendered:
    analysis: Analysis
    charts: dict[str, Chart]
    files: dict[str, Path]
    warnings: list[str] = field(default_factory=list)


def build(root: Path, write: Callable[[Path], Path] | None) -> Analysis:
    """A database in `root` filled by `tracker import` (or only created), analysed."""
    workspace = Workspace(root)
    workspace.write_config()
    if write is None:
        result = workspace.cli("db", "upgrade")
    else:
        result = workspace.cli("import", str(write(root / "data.csv")))
    assert result.returncode == 0, result.stderr
    return analyse(open_database(f"sqlite:///{workspace.db}"))


def render(analysis: Analysis, folder: Path, report: ReportSettings) -> Rendered:
    charts = draw_all(analysis, DEFAULT_EVENTS, report)
    return save(analysis, charts, folder, [chart.name for chart in charts])


def save(analysis: Analysis, charts: list[Chart], folder: Path, names: list[str]) -> Rendered:
    """Save the named charts as the report does, keeping the warnings raised meanwhile."""
    rendered = Rendered(analysis, {chart.name: chart for chart in charts}, {})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for chart in charts:
            if chart.name not in names:
                continue
            path = folder / chart.name
            chart.figure.savefig(path, dpi=DPI)
            rendered.files[chart.name] = path
    rendered.warnings = [str(warning.message) for warning in caught]
    return rendered


def _sparse(path: Path) -> Path:
    path.write_text(",".join(datasets.HEADER) + "\n" + SPARSE_ROW, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def real(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    root = tmp_path_factory.mktemp("real")
    return render(build(root, datasets.write_csv), root, ReportSettings())


@pytest.fixture(scope="session")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    root = tmp_path_factory.mktemp("empty")
    return render(build(root, None), root, ReportSettings())


@pytest.fixture(scope="session")
def sparse(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    root = tmp_path_factory.mktemp("sparse")
    return render(build(root, _sparse), root, ReportSettings())


@pytest.fixture(scope="session")
def synthetic_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic.write_csv(tmp_path_factory.mktemp("synthetic-csv") / "rows.csv")


@pytest.fixture(scope="session")
def collected(tmp_path_factory: pytest.TempPathFactory, synthetic_csv: Path) -> Rendered:
    """Fediverse, Bluesky, Wikipedia and Tumblr rows like the collectors store.

    Only the charts these tests look into are drawn, and only japan.png (where the
    Japanese text is) is saved: the others are checked on their figures.
    """
    root = tmp_path_factory.mktemp("collected")
    analysis = build(root, lambda path: Path(synthetic_csv))
    charts = [
        overview.draw(analysis, DEFAULT_EVENTS),
        growth.draw(analysis, DEFAULT_EVENTS),
        active.draw(analysis, DEFAULT_EVENTS),
        share.draw(analysis, DEFAULT_EVENTS),
        japan.draw(analysis, DEFAULT_EVENTS, ReportSettings()),
    ]
    return save(analysis, charts, root, ["japan.png"])
