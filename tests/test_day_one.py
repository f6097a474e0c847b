"""A fresh install without internet: `make run`'s own commands, then the report's first lines.

The shipped config is used as it is, except that every endpoint points at a closed
port on 127.0.0.1 (no DNS look-up and no traffic leave the machine): each collector
fails the way it would offline, and the shipped history must carry the report.
"""

from __future__ import annotations

import re
import socket
from html import unescape
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO, TEST_ALLOW_HOSTS, Workspace


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def offline_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    dead = f"http://127.0.0.1:{closed_port()}"
    collectors = config["collectors"]
    collectors["fediverse"]["instances"] = [dead]
    collectors["joinmastodon"]["url"] = f"{dead}/statistics"
    collectors["bluesky"]["relays"] = [dead]
    collectors["tumblr"]["api"] = dead
    collectors["wikipedia"]["api"] = dead
    collectors["plc"]["directory"] = dead
    assert set(collectors) == {"fediverse", "joinmastodon", "bluesky", "tumblr", "wikipedia", "plc"}
    config["http"]["allow_hosts"] = list(TEST_ALLOW_HOSTS)
    config["http"]["retries"] = 0  # a refused port is retried with backoff: minutes for nothing
    return config


def make_run_commands() -> list[list[str]]:
    recipe = (REPO / "Makefile").read_text(encoding="utf-8").split("\nrun:", 1)[1]
    lines = [line.strip() for line in recipe.split("\n\n", 1)[0].splitlines()]
    commands = [line.split()[1:] for line in lines if line.startswith("$(BIN)/tracker ")]
    assert [c[0] for c in commands] == ["history", "collect", "report"], commands
    return commands


def first_paragraph(page: Path) -> str:
    html = page.read_text(encoding="utf-8")
    body = html.split("<body>", 1)[1]
    match = re.search(r"<p[^>]*>(.*?)</p>", body, re.S)
    assert match, body[:500]
    return unescape(re.sub(r"<[^>]+>", "", match.group(1)))


def test_a_fresh_install_offline_opens_with_the_2022_mastodon_wave(workspace: Workspace) -> None:
    workspace.write_config(offline_config())
    output = {}
    for command in make_run_commands():
        result = workspace.run(*command, timeout=300)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        output[command[0]] = result.stdout
    assert "added 111,414 observations" in output["history"]
    assert "fediverse: 1 targets: 0 ok, 1 failed" in output["collect"]  # offline, recorded
    page = workspace.root / "data" / "reports" / "latest" / "index.html"
    opening = first_paragraph(page)
    assert opening.startswith("Mastodon gained 440,461 accounts in the 14 days after Musk")
    assert "largest weekly gain in the bot's record" in unescape(page.read_text("utf-8"))
