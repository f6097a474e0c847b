"""A throwaway PostgreSQL cluster on 127.0.0.1, for the tests and for `.ci/run`.

Standard library only: `.ci/run` starts the cluster with the system Python before
the virtual environment exists (`python3 tests/support/postgres.py start DIR`),
exports its URL as `TRACKER_TEST_POSTGRES_URL`, and stops it at the end. Without
that variable the pytest session starts its own (see `tests/conftest.py`).

`initdb` refuses to run as root, so as root every server command runs as the
`postgres` user (`runuser -u postgres --`) on a folder that user owns. The server
listens on 127.0.0.1 only, on a port below 32768 (the kernel's ephemeral range
starts there, and a port in TIME_WAIT there makes a start fail now and then),
with fsync off: a test cluster never needs to survive a power cut.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

URL_ENV = "TRACKER_TEST_POSTGRES_URL"
BIN_ENV = "TRACKER_PG_BIN"
SERVER_USER = "postgres"


class PostgresUnavailable(Exception):
    """No PostgreSQL server can be started here; the message says why in one line."""


def find_bin_dir() -> Path:
    """The newest server binaries: `$TRACKER_PG_BIN`, Debian's layout, or PATH."""
    candidates: list[Path] = []
    if os.environ.get(BIN_ENV):
        candidates.append(Path(os.environ[BIN_ENV]))
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    candidates.extend(sorted(versions, key=lambda p: _version_key(p.parent.name), reverse=True))
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or on "
        f"PATH; install them (`apt-get install postgresql`, as .ci/run does) or set {URL_ENV}"
    )


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _free_port() -> int:
    """A port below the ephemeral range that nothing listens on right now."""
    for _ in range(50):
        port = random.randint(20000, 32000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise PostgresUnavailable("no free port between 20000 and 32000 on 127.0.0.1")


@dataclass
class Cluster:
    """A running server: its folder, port and the SQLAlchemy URL of its `postgres` database."""

    root: Path
    port: int
    bin_dir: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{SERVER_USER}@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        """Immediate stop (no checkpoint: the data is thrown away), then remove the folder."""
        if (self.data_dir / "postmaster.pid").exists():
            _run_as_server_user(
                [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"]
            )
        shutil.rmtree(self.root, ignore_errors=True)


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", SERVER_USER, "--", *command]


def _run_as_server_user(
    command: list[str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _as_server_user(command),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _prepare_root(root: Path | None) -> Path:
    folder = Path(root) if root else Path(tempfile.mkdtemp(prefix="tracker-pg-"))
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        try:
            import pwd

            owner = pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise PostgresUnavailable(
                f"running as root, and there is no `{SERVER_USER}` user to run initdb as "
                "(initdb refuses root); install the postgresql package or run as another user"
            ) from None
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        folder.chmod(0o700)
    return folder


def start_cluster(root: Path | None = None, attempts: int = 3) -> Cluster:
    """initdb in `root` (a new temporary folder by default) and start the server."""
    bin_dir = find_bin_dir()
    folder = _prepare_root(root)
    data = folder / "data"
    init = _run_as_server_user(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            SERVER_USER,
            "-E",
            "UTF8",
            "--no-sync",
        ],
        timeout=120,
    )
    if init.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise PostgresUnavailable(f"initdb failed: {_last_line(init)}")
    reason = ""
    for _ in range(attempts):
        port = _free_port()
        options = (
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        started = _run_as_server_user(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(folder / "server.log"),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "start",
            ],
            timeout=90,
        )
        if started.returncode == 0:
            return Cluster(folder, port, bin_dir)
        reason = _server_log_tail(folder) or _last_line(started)
    shutil.rmtree(folder, ignore_errors=True)
    raise PostgresUnavailable(f"the server did not start: {reason}")


def _last_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = (result.stderr or result.stdout or "").strip().splitlines()
    return lines[-1] if lines else f"exit code {result.returncode}"


def _server_log_tail(folder: Path) -> str:
    try:
        lines = (folder / "server.log").read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


def create_database(admin_url: str, name: str) -> str:
    """A new empty database on the cluster of `admin_url`; returns its URL."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    from sqlalchemy import create_engine

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def check_server(admin_url: str) -> None:
    """Raise PostgresUnavailable (one line) unless `admin_url` answers."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    try:
        engine = create_engine(admin_url, connect_args={"connect_timeout": 10})
    except ImportError as exc:
        raise PostgresUnavailable(f"the psycopg driver is not installed: {exc}") from None
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except SQLAlchemyError as exc:
        shown = make_url(admin_url).render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()
        detail = reason[0] if reason else type(exc).__name__
        raise PostgresUnavailable(f"{shown} does not answer: {detail}") from None
    finally:
        engine.dispose()


def main(argv: list[str]) -> int:
    """`start DIR` prints the URL of a new cluster in DIR; `stop DIR PORT` ends it."""
    if len(argv) >= 2 and argv[0] == "start":
        try:
            cluster = start_cluster(Path(argv[1]))
        except PostgresUnavailable as exc:
            print(f"PostgreSQL unavailable: {exc}", file=sys.stderr)
            return 1
        print(cluster.url)
        return 0
    if len(argv) >= 2 and argv[0] == "stop":
        Cluster(Path(argv[1]), 0, find_bin_dir()).stop()
        return 0
    print("usage: postgres.py start DIR | stop DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
