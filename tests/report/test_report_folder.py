"""`tracker report` never deletes a file it did not write (issue 10, item 8).

The report replaces its folder in one rename; a folder holding anything but an earlier
report of the tool is refused with one line and exit 2, and left exactly as it was.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Workspace

NOW = "2026-01-02T03:04:05Z"


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (and beside it: nothing may be renamed away) with its bytes,
    but the lock file the command holds beside its folder."""
    return {
        str(path.relative_to(folder.parent)): path.read_bytes()
        for path in sorted(folder.parent.rglob("*"))
        if path.is_file() and not path.name.endswith(".report.lock")
    }


def assert_refused(result: object, folder: Path, why: str) -> None:
    assert result.returncode == 2, result.stdout  # type: ignore[attr-defined]
    [line] = result.stderr.splitlines()  # type: ignore[attr-defined]
    assert line.startswith("error: ") and str(folder) in line and why in line, line


def test_report_output_refuses_a_folder_holding_the_users_files(workspace: Workspace) -> None:
    workspace.write_config()
    out = workspace.root / "mine" / "thesis"
    (out / "drafts").mkdir(parents=True)
    (out / "notes.txt").write_text("two years of notes\n", encoding="utf-8")
    (out / "drafts" / "chapter1.md").write_text("# One\n", encoding="utf-8")
    before = tree(out)
    result = workspace.cli("report", "--output", str(out), TRACKER_NOW=NOW)
    assert_refused(result, out, "drafts")
    assert tree(out) == before


def test_report_output_refuses_an_earlier_report_the_user_added_a_file_to(
    workspace: Workspace,
) -> None:
    workspace.write_config()
    out = workspace.root / "report"
    assert workspace.cli("report", "--output", str(out), TRACKER_NOW=NOW).returncode == 0
    (out / "my-comments.txt").write_text("the November peak is real\n", encoding="utf-8")
    before = tree(out)
    result = workspace.cli("report", "--output", str(out), TRACKER_NOW="2026-01-03T00:00:00Z")
    assert_refused(result, out, "my-comments.txt")
    assert tree(out) == before


def test_report_output_refuses_a_file_and_a_folder_of_foreign_files_named_like_a_report(
    workspace: Workspace,
) -> None:
    workspace.write_config()
    out = workspace.root / "report"
    out.write_text("not a folder\n", encoding="utf-8")
    assert_refused(workspace.cli("report", "--output", str(out)), out, "not a folder")
    assert out.read_text(encoding="utf-8") == "not a folder\n"
    site = workspace.root / "site"
    site.mkdir()
    (site / "index.html").write_text("<p>my own page</p>\n", encoding="utf-8")
    assert_refused(workspace.cli("report", "--output", str(site)), site, "summary.json")
    assert (site / "index.html").read_text(encoding="utf-8") == "<p>my own page</p>\n"


def test_report_output_replaces_an_earlier_report_and_fills_an_empty_folder(
    workspace: Workspace,
) -> None:
    workspace.write_config()
    out = workspace.root / "report"
    out.mkdir()
    assert workspace.cli("report", "--output", str(out), TRACKER_NOW=NOW).returncode == 0
    later = "2026-01-03T00:00:00Z"
    result = workspace.cli("report", "--output", str(out), TRACKER_NOW=later)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["generated_at"] == later
    assert sorted(path.name for path in workspace.root.iterdir() if "report" in path.name) == [
        ".report.report.lock",
        "report",
    ]


def test_default_report_refuses_to_replace_latest_holding_a_users_file(
    workspace: Workspace,
) -> None:
    workspace.write_config()
    assert workspace.cli("report", TRACKER_NOW=NOW).returncode == 0
    latest = workspace.root / "data" / "reports" / "latest"
    (latest / "bookmark.url").write_text("https://example.org\n", encoding="utf-8")
    result = workspace.cli("report", TRACKER_NOW=NOW)
    assert_refused(result, latest, "bookmark.url")
    assert (latest / "bookmark.url").exists()
    # Without the user's file, the same report replaces both folders as before.
    (latest / "bookmark.url").unlink()
    assert workspace.cli("report", TRACKER_NOW=NOW).returncode == 0
