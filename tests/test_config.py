"""Each configuration mistake is one line naming the dotted key; the CLI exits 2."""

from pathlib import Path

import pytest

from tests.conftest import Workspace
from tracker.errors import ConfigError
from tracker.loader import load_config, parse_config

GOOD = """
database: sqlite:///data/tracker.db
contact: https://example.org/about-this-crawler
http: {timeout: 20, deadline: 60, concurrency: 32, per_host: 2, max_bytes: 5000000, retries: 3}
collectors:
  fediverse:
    instances: [mastodon.social, mstdn.jp, misskey.io, lemmy.world]
"""


def test_contract_example_loads_and_resolves_sqlite_path(tmp_path: Path) -> None:
    config = parse_config(GOOD, tmp_path / "config.yaml")
    assert config.database == f"sqlite:///{tmp_path}/data/tracker.db"
    assert config.http.deadline == 60
    assert config.collectors["fediverse"].enabled


def test_allow_hosts_are_normalised(tmp_path: Path) -> None:
    text = GOOD.replace(
        "retries: 3}", "retries: 3, allow_hosts: ['127.0.0.1', '[::1]', Intra.Lan.]}"
    )
    config = parse_config(text, tmp_path / "c.yaml")
    assert config.http_for("fediverse").allow_hosts == ("127.0.0.1", "::1", "intra.lan")


def test_collector_http_overrides_only_given_keys(tmp_path: Path) -> None:
    text = GOOD + "    http: {timeout: 5}\n"
    config = parse_config(text, tmp_path / "c.yaml")
    http = config.http_for("fediverse")
    assert (http.timeout, http.deadline, http.retries) == (5, 60, 3)


def test_env_database_url_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKER_DB_URL", "postgresql+psycopg://u:secret@127.0.0.1:5999/db")
    config = parse_config(GOOD, tmp_path / "config.yaml")
    assert config.database == "postgresql+psycopg://u:secret@127.0.0.1:5999/db"


def test_config_file_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "elsewhere.yaml"
    path.write_text(GOOD)
    monkeypatch.setenv("TRACKER_CONFIG", str(path))
    assert load_config().path == path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GOOD.replace("timeout: 20", "timeout: -1"),
            "http.timeout: Input should be greater than 0",
        ),
        (
            GOOD.replace("retries: 3", "retries: three"),
            "http.retries: Input should be a valid integer",
        ),
        (GOOD.replace("per_host: 2", "per_hots: 2"), "http.per_hots: unknown key"),
        (
            GOOD.replace("retries: 3}", "retries: 3, allow_hosts: ['http://127.0.0.1:8080/']}"),
            "http.allow_hosts: item 0: 'http://127.0.0.1:8080/': give a host, without scheme, port",
        ),
        (
            GOOD + "    http: {allow_hosts: ['127.0.0.1']}\n",
            "collectors.fediverse.http.allow_hosts: unknown key",
        ),
        (GOOD + "colour: blue\n", "colour: unknown key"),
        (GOOD.replace("instances:", "instancez:"), "collectors.fediverse.instancez: unknown key"),
        (GOOD.replace("fediverse:", "fedivers:"), "collectors.fedivers: unknown collector"),
        (
            GOOD.replace("https://example.org/about-this-crawler", "nobody"),
            "contact: must be an http(s)",
        ),
        (
            GOOD.replace("sqlite:///data/tracker.db", "not a url"),
            "database: not a valid SQLAlchemy URL",
        ),
        (GOOD.replace("mstdn.jp,", "ftp://mstdn.jp,"), "collectors.fediverse.instances: item 1"),
        (GOOD.replace("contact:", "contact_:"), "contact: required key is missing"),
        (GOOD + "  fediverse:\n    instances: []\n", "appears twice"),
        ("database: [unclosed\n", "invalid YAML at line"),
        ("- just\n- a list\n", "must be a mapping"),
    ],
)
def test_mistakes_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, tmp_path / "config.yaml")
    line = str(caught.value)
    assert message in line
    assert "\n" not in line


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read .*missing\.yaml: No such file"):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (GOOD.replace("concurrency: 32", "concurrency: 0"), "http.concurrency"),
        (GOOD.replace("instances:", "instancez:"), "collectors.fediverse.instancez"),
        ("database: [unclosed\n", "invalid YAML"),
    ],
)
def test_cli_prints_one_line_and_exits_2(workspace: Workspace, text: str, key: str) -> None:
    workspace.write_config(text=text)
    for command in (["collect"], ["status"], ["export"]):
        result = workspace.cli(*command)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert key in lines[0]
        assert "Traceback" not in result.stderr


def test_cli_missing_config_exits_2(workspace: Workspace) -> None:
    # A real subprocess, as cron runs it: one line on stderr, exit 2, no traceback.
    result = workspace.run("collect")
    assert "Traceback" not in result.stderr
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: config: cannot read")
