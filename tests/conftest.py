"""Shared fixtures: loopback servers, temporary configs, and running `tracker` as a user would."""

from __future__ import annotations

import csv
import io
import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import payloads as pl
from tests.support import postgres as pg
from tests.support.loopback import Loopback

REPO = Path(__file__).resolve().parents[1]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Every dataset test skipped for want of $TRACKER_SHARED/datasets is one summary line.

    pytest folds skips with the same location and reason; those raised in a fixture
    carry their test's location, so they are given the one of `require_datasets`.
    """
    report = yield
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple) and pl.NOT_RUN in str(longrepr[2]):
        code = pl.require_datasets.__code__
        report.longrepr = (code.co_filename, code.co_firstlineno, longrepr[2])
    return report


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
        and (not key.startswith("TRACKER_") or key == "TRACKER_SHARED")
        and key != "PYTHONDONTWRITEBYTECODE"  # let the subprocess cache its bytecode
    }
    env["NO_PROXY"] = "*"
    env.update(extra)
    return env


TEST_ALLOW_HOSTS = ("127.0.0.1",)
"""The only host the tests' configs exempt from the address rule; deny probes use others."""


class Workspace:
    """A folder with a config.yaml and a database, and `tracker` run inside it."""

    def __init__(self, root: Path, database_url: str | None = None) -> None:
        self.root = root
        self.config = root / "config.yaml"
        self.db = root / "tracker.db"
        self.env: dict[str, str] = {}
        if database_url is not None:  # every command then uses it instead of the config's
            self.env["TRACKER_DB_URL"] = database_url

    @property
    def db_url(self) -> str:
        """The database every `tracker` command of this workspace uses."""
        return self.env.get("TRACKER_DB_URL") or f"sqlite:///{self.db}"

    def write_config(self, data: dict[str, Any] | None = None, text: str | None = None) -> Path:
        if text is None:
            base: dict[str, Any] = {
                "database": "sqlite:///tracker.db",
                "contact": "https://example.org/tests",
                "http": {"timeout": 5, "deadline": 10, "retries": 1},
            }
            base.update(data or {})
            # The loopback test servers are IP literals, which the address rule
            # refuses unless listed; a test that sets allow_hosts itself keeps its own.
            base["http"] = {"allow_hosts": list(TEST_ALLOW_HOSTS), **(base["http"] or {})}
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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The admin URL of a PostgreSQL server: `$TRACKER_TEST_POSTGRES_URL` (.ci/run starts
    one), else a throwaway cluster for this session. Unavailable is a failure, not a skip."""
    url = os.environ.get(pg.URL_ENV, "")
    cluster = None
    try:
        if not url:
            cluster = pg.start_cluster()
            url = cluster.url
        pg.check_server(url)
    except pg.PostgresUnavailable as exc:
        if cluster is not None:
            cluster.stop()
        pytest.fail(f"PostgreSQL unavailable: {exc}", pytrace=False)
    yield url
    if cluster is not None:
        cluster.stop()


_database_numbers = itertools.count(1)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (dropped after it)."""
    name = f"tracker_test_{os.getpid()}_{next(_database_numbers)}"
    yield pg.create_database(postgres_server, name)
    pg.drop_database(postgres_server, name)


@pytest.fixture
def pg_workspace(tmp_path: Path, postgres_url: str) -> Workspace:
    """A workspace whose commands all use a fresh PostgreSQL database (via TRACKER_DB_URL)."""
    return Workspace(tmp_path, database_url=postgres_url)
