"""The notebook runs top to bottom on a real kernel, on a database of the real datasets."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO, Workspace
from tests.support.datasets import write_csv

NOTEBOOK = REPO / "notebooks" / "migration.ipynb"


def test_notebook_is_stored_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.slow
def test_notebook_runs_on_the_real_datasets(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace.write_config()
    assert workspace.cli("import", str(write_csv(tmp_path / "real.csv"))).returncode == 0
    monkeypatch.setenv("TRACKER_DB_URL", f"sqlite:///{workspace.db}")
    monkeypatch.chdir(tmp_path)  # no config.yaml here: the notebook uses the defaults
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.get("output_type") == "error"]
    text = "".join(output.get("text", "") for output in outputs)
    assert "Data from 2018-08-11 to 2026-04-13" in text
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) == 6  # every report chart, drawn by the package's own code
    tables = "".join(output.get("data", {}).get("text/html", "") for output in outputs)
    assert "joinmastodon" in tables and "excess" in tables
