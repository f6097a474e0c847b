"""`tracker history` end to end, as a user runs it, on a real SQLite file."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

from tests.conftest import REPO, Workspace
from tests.history.conftest import BLUESKY_POINTS, INSTANCES

HEADER = "timestamp,usercount,instancecount,tootscount\n"


def database_rows(workspace: Workspace) -> tuple[int, int]:
    with sqlite3.connect(workspace.db) as connection:
        runs = connection.execute("SELECT count(*) FROM runs").fetchone()[0]
        points = connection.execute("SELECT count(*) FROM points").fetchone()[0]
    return runs, points


def test_the_shipped_series_through_the_real_entry_point(workspace: Workspace) -> None:
    """A subprocess, as `make run` calls it: the packaged file is found, twice is a no-op."""
    workspace.write_config()
    first = workspace.run("history", "import", "mastodonusercount")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("mastodonusercount: added 111,414 observations from ")
    assert "2018-08-11..2022-11-07" in first.stdout
    second = workspace.run("history", "import", "mastodonusercount")
    assert second.returncode == 0, second.stderr
    assert second.stdout == "mastodonusercount: added 0 observations (all 111,414 already stored)\n"
    assert database_rows(workspace) == (1, 111_414)
    status = workspace.cli("status")
    assert "history:mastodonusercount ok" in status.stdout
    assert re.search(
        r"history import of mastodonusercount_hourly_\S+ \(shipped\), sha256 [0-9a-f]{64}",
        status.stdout,
    )


def test_a_downloaded_file_by_path_or_by_name(
    workspace: Workspace, shared: Callable[[str], Path]
) -> None:
    workspace.write_config()
    by_path = workspace.cli("history", "import", str(shared(INSTANCES)))
    assert by_path.returncode == 0, by_path.stderr
    assert by_path.stdout.startswith("instances_social: added 906 observations from ")
    by_name = workspace.cli(
        "history", "import", "bluesky_users", "--file", str(shared(BLUESKY_POINTS))
    )
    assert by_name.returncode == 0, by_name.stderr
    assert by_name.stdout.startswith("bluesky_users: added 61 observations")
    listing = workspace.cli("history", "list").stdout
    assert "instances_social (mastodon, not shipped): 906 rows, 2022-11-04..2022-12-31" in listing
    assert "bluesky_users (bluesky, not shipped): 61 rows, 2023-05-08..2024-11-21" in listing


def test_list_before_any_import(workspace: Workspace) -> None:
    workspace.write_config()
    result = workspace.cli("history", "list")
    assert result.returncode == 0, result.stderr
    heads = [line for line in result.stdout.splitlines() if not line.startswith(" ")]
    assert heads == [
        "mastodonusercount (mastodon, shipped): 0 rows (not imported)",
        "joinmastodon_archive (mastodon, not shipped): 0 rows (not imported)",
        "instances_social (mastodon, not shipped): 0 rows (not imported)",
        "bluesky_users (bluesky, not shipped): 0 rows (not imported)",
        "bsky_users (bluesky, not shipped): 0 rows (not imported)",
    ]
    assert "  licence:  CC0 1.0" in result.stdout
    assert "  origin:   https://github.com/seblammers/mastodon-user-data" in result.stdout
    assert "  import:   tracker history import bsky_users --file PATH" in result.stdout


def test_a_bad_file_is_one_line_exit_1_and_nothing_written(
    workspace: Workspace, tmp_path: Path
) -> None:
    workspace.write_config()
    bad = tmp_path / "bot.csv"
    rows = "".join(f"{1_600_000_000 + 3600 * i},{-i if i % 7 == 3 else i},1,1\n" for i in range(60))
    bad.write_text(HEADER + rows, encoding="utf-8")
    result = workspace.cli("history", "import", str(bad))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(
        "error: bot.csv: nothing imported: 9 bad rows: line 5: usercount '-3': negative count; "
        "line 12: "
    )
    assert "and 6 more (lines 26, 33, 40, 47, 54, 61)" in result.stderr
    assert database_rows(workspace) == (0, 0)


def test_mistakes_on_the_command_line_exit_2(workspace: Workspace, tmp_path: Path) -> None:
    workspace.write_config()
    not_shipped = workspace.cli("history", "import", "joinmastodon_archive")
    assert not_shipped.returncode == 2
    assert "joinmastodon_archive is not shipped" in not_shipped.stderr
    assert "--file PATH" in not_shipped.stderr
    unknown = workspace.cli("history", "import", "nothing-like-this")
    assert unknown.returncode == 2
    assert "neither a known archive (mastodonusercount, " in unknown.stderr
    named_unknown = workspace.cli("history", "import", "nope", "--file", str(tmp_path))
    assert named_unknown.returncode == 2


def test_a_file_of_another_archive_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    workspace.write_config()
    path = tmp_path / "bot.csv"
    path.write_text(HEADER + "1600000000,1,1,1\n", encoding="utf-8")
    result = workspace.cli("history", "import", "bsky_users", "--file", str(path))
    assert result.returncode == 1
    assert "this is the mastodonusercount archive's format" in result.stderr
    assert database_rows(workspace) == (0, 0)


def test_make_run_imports_the_shipped_series_before_collecting() -> None:
    recipe = (REPO / "Makefile").read_text(encoding="utf-8").split("\nrun:", 1)[1]
    recipe = recipe.split("\n\n", 1)[0]
    commands = [line.strip() for line in recipe.splitlines() if line.startswith("\t")]
    assert commands[:2] == [
        "$(BIN)/tracker history import mastodonusercount",
        "$(BIN)/tracker collect",
    ]


def test_a_demo_clock_in_the_past_does_not_make_real_rows_future(workspace: Workspace) -> None:
    workspace.write_config()
    result = workspace.cli(
        "history", "import", "mastodonusercount", TRACKER_NOW="2020-01-01T00:00:00Z"
    )
    assert result.returncode == 0, result.stderr
    assert "added 111,414 observations" in result.stdout
