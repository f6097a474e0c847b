"""Shared fixtures: loopback servers, temporary configs, and running `tracker` as a user would."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.loopback import Loopback

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def loopback() -> Iterator[Loopback]:
    servers = Loopback()
    yield servers
    servers.close()


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a `tracker` subprocess: no proxies, no stray tracker settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.lower().endswith("_proxy")
        and not key.startswith("TRACKER_")
        and key != "PYTHONDONTWRITEBYTECODE"  # let the subprocess cache its bytecode
    }
    env["NO_PROXY"] = "*"
    env.update(extra)
    return env


class Workspace:
    """A folder with a config.yaml and a database, and `tracker` run inside it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "config.yaml"
        self.db = root / "tracker.db"
        self.env: dict[str, str] = {}

    def write_config(self, data: dict[str, Any] | None = None, text: str | None = None) -> Path:
        if text is None:
            base: dict[str, Any] = {
                "database": "sqlite:///tracker.db",
                "contact": "https://example.org/tests",
                "http": {"timeout": 5, "deadline": 10, "retries": 1},
            }
            base.update(data or {})
            text = yaml.safe_dump(base, allow_unicode=True, sort_keys=False)
        self.config.write_text(text, encoding="utf-8")
        return self.config

    def run(self, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tracker", *args, "--config", str(self.config)],
            cwd=self.root,
            env=clean_env(**{**self.env, **env}),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """The same command in this process (fast): for tests of output and exit codes."""
        from typer.testing import CliRunner

        from tracker.cli import app

        unset: dict[str, str | None] = {
            key: None for key in os.environ if key.startswith("TRACKER_")
        }
        result = CliRunner().invoke(
            app, [*args, "--config", str(self.config)], env={**unset, **self.env, **env}
        )
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)

    def export(self, *args: str) -> list[dict[str, str]]:
        result = self.cli("export", *args)
        assert result.returncode == 0, result.stderr
        return list(csv.DictReader(io.StringIO(result.stdout)))


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)
