"""The commands in `jobs/` (crontab and systemd units) work as written.

People paste these files into their crontab and /etc/systemd; a renamed option
would only show up as cron mail weeks later. Each command is run here as the
file gives it, with the install path replaced by a test folder.
"""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import REPO, Workspace
from tests.support.loopback import Loopback
from tests.support.sites import MastodonSpec, iso

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
INSTALL = "/srv/tracker"


def crontab_commands() -> list[list[str]]:
    """The tracker arguments of each crontab entry (five time fields, then the command)."""
    commands = []
    for line in (REPO / "jobs" / "crontab.example").read_text().splitlines():
        fields = line.split(None, 5)
        if len(fields) < 6 or line.lstrip().startswith("#") or "=" in fields[0]:
            continue
        assert re.fullmatch(r"[\d*/,-]+", " ".join(fields[:5]).replace(" ", "")), line
        words = shlex.split(fields[5])
        program = words.index(".venv/bin/tracker")
        end = words.index(">>") if ">>" in words else len(words)
        commands.append(words[program + 1 : end])
    return commands


def unit_commands(name: str) -> list[list[str]]:
    """The tracker arguments of each ExecStart line (the program must be the install's)."""
    commands = []
    for line in (REPO / "jobs" / name).read_text().splitlines():
        if line.startswith("ExecStart="):
            program, *arguments = shlex.split(line.split("=", 1)[1])
            assert program == f"{INSTALL}/.venv/bin/tracker", line
            commands.append(arguments)
    return commands


def without_config(arguments: list[str]) -> list[str]:
    """The arguments minus `--config /srv/tracker/config.yaml` (the workspace adds its own)."""
    assert "--config" in arguments, f"{arguments}: every job names its config"
    at = arguments.index("--config")
    assert arguments[at + 1].startswith(INSTALL)
    return arguments[:at] + arguments[at + 2 :]


def verbs(commands: list[list[str]]) -> list[str]:
    return [" ".join(c[:2]) if c[0] == "db" else c[0] for c in commands]


def test_the_crontab_and_the_timer_run_what_they_say() -> None:
    assert verbs(crontab_commands()) == ["collect", "report", "db prune"]
    assert verbs(unit_commands("tracker-collect.service")) == ["collect", "report"]
    crontab = (REPO / "jobs" / "crontab.example").read_text()
    assert all(
        f"cd {INSTALL} && .venv/bin/tracker" in line
        for line in crontab.splitlines()
        if ".venv/bin/tracker" in line and not line.lstrip().startswith("#")
    )


JOB_COMMANDS = [
    pytest.param(arguments, id=f"{name}: {' '.join(arguments[:3])}")
    for name, commands in (
        ("crontab.example", crontab_commands()),
        ("tracker-collect.service", unit_commands("tracker-collect.service")),
    )
    for arguments in commands
]


@pytest.mark.parametrize("arguments", JOB_COMMANDS)
def test_each_job_command_works_as_written(
    arguments: list[str], workspace: Workspace, loopback: Loopback
) -> None:
    site = loopback.add(MastodonSpec().routes(NOW))
    workspace.write_config({"collectors": {"fediverse": {"instances": [site.url]}}})
    assert workspace.run("collect", TRACKER_NOW=iso(NOW)).returncode == 0
    later = NOW + timedelta(days=100)  # the archived bodies are 100 days old then
    result = workspace.run(*without_config(arguments), TRACKER_NOW=iso(later))
    assert result.returncode == 0, result.stderr
    if arguments[:2] == ["db", "prune"]:
        assert re.search(r"removed [1-9][0-9]* archived payloads", result.stdout), result.stdout
    assert result.stderr == "" or "error" not in result.stderr.lower(), result.stderr


def test_the_scheduler_unit_runs_tracker_schedule(workspace: Workspace) -> None:
    (arguments,) = unit_commands("tracker.service")
    assert arguments[0] == "schedule"
    workspace.write_config()
    result = workspace.run(*without_config(arguments), "--list")
    assert result.returncode == 0, result.stderr
    assert "report" in result.stdout


def test_every_unit_and_timer_runs_from_the_install_folder() -> None:
    for name in ("tracker.service", "tracker-collect.service"):
        text = (REPO / "jobs" / name).read_text()
        assert f"WorkingDirectory={INSTALL}\n" in text
    timer = (REPO / "jobs" / "tracker-collect.timer").read_text()
    assert re.search(r"^OnCalendar=.* UTC$", timer, re.MULTILINE)
    unit = re.search(r"^Unit=(.+)$", timer, re.MULTILINE)
    assert unit is not None and unit.group(1) == "tracker-collect.service"
