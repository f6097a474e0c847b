"""A real `@atproto/pds` with a local PLC directory, started for the tests on 127.0.0.1.

The Node packages are installed by `make node-deps` into `.cache/node/<lock hash>/`
(the same hash the Makefile computes), never by the tests: installing takes minutes.
The servers write their URLs to a file once both listen; their output goes to a
log file (a pipe nobody reads would fill up and stall them), shown when start-up fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
LOCK = HERE / "package-lock.json"
SCRIPT = HERE / "servers.cjs"
START_TIMEOUT = 60.0
PORT_RANGE = (20000, 32000)
"""Below the kernel's ephemeral range, where a port in TIME_WAIT could block a bind."""


class ServersUnavailable(RuntimeError):
    """The servers cannot run here; the message is one line saying what to do."""


def node_cache() -> Path:
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:16]
    return REPO / ".cache" / "node" / digest


@dataclass(frozen=True)
class Account:
    handle: str
    did: str
    access_jwt: str


class PdsServers:
    """One running PDS (and its PLC directory) and the calls a test makes to it."""

    def __init__(self, process: subprocess.Popen[bytes], urls: dict[str, str], admin: str):
        self.process = process
        self.url = urls["pds"]
        self.plc_url = urls["plc"]
        self._admin = admin
        self._client = httpx.Client(base_url=self.url, timeout=30, trust_env=False)

    def xrpc(
        self,
        name: str,
        body: Any = None,
        *,
        token: str | None = None,
        admin: bool = False,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """One XRPC call: a POST with a JSON body when `body` is given, else a GET."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        auth = ("admin", self._admin) if admin else None
        if body is None:
            response = self._client.get(f"/xrpc/{name}", params=params, headers=headers)
        else:
            response = self._client.post(f"/xrpc/{name}", json=body, headers=headers, auth=auth)
        if response.status_code != 200:
            raise AssertionError(f"{name}: HTTP {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None

    def create_invite_code(self, uses: int) -> str:
        code: str = self.xrpc(
            "com.atproto.server.createInviteCode", {"useCount": uses}, admin=True
        )["code"]
        return code

    def create_account(self, name: str, invite_code: str | None) -> Account:
        body = {
            "handle": f"{name}.test",
            "email": f"{name}@example.com",
            "password": secrets.token_hex(12),
        }
        if invite_code:
            body["inviteCode"] = invite_code
        reply = self.xrpc("com.atproto.server.createAccount", body)
        return Account(reply["handle"], reply["did"], reply["accessJwt"])

    def deactivate(self, account: Account) -> None:
        self.xrpc("com.atproto.server.deactivateAccount", {}, token=account.access_jwt)

    def stop(self) -> None:
        self._client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process.stdin is not None:
            self.process.stdin.close()


def start_pds(
    workdir: Path, *, invite_required: bool, plc_database: str | None = None
) -> PdsServers:
    """Start the servers in `workdir` (data, blobs, log); a taken port is retried.

    `plc_database`: a PostgreSQL URL (`postgresql://`) for the PLC directory, whose
    in-memory database cannot serve `/export`."""
    cache = node_cache()
    if not (cache / ".installed").exists():
        raise ServersUnavailable(
            f"the Node test servers are not installed in {cache.relative_to(REPO)}: "
            "run `make node-deps`"
        )
    node = shutil.which("node")
    if node is None:
        raise ServersUnavailable("node is not on PATH: install Node.js, then run `make node-deps`")
    last_log = ""
    for attempt in range(3):
        port = _free_port()
        folder = workdir / f"pds-{attempt}"
        (folder / "data").mkdir(parents=True)
        (folder / "blobs").mkdir()
        admin = secrets.token_hex(16)
        ready = folder / "ready.json"
        log_path = folder / "servers.log"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PDS_")},
            "TRACKER_NODE_MODULES": str(cache / "node_modules"),
            "TRACKER_READY_FILE": str(ready),
            "PDS_HOSTNAME": "localhost",
            "PDS_PORT": str(port),
            "PDS_DATA_DIRECTORY": str(folder / "data"),
            "PDS_BLOBSTORE_DISK_LOCATION": str(folder / "blobs"),
            "PDS_DEV_MODE": "true",
            "PDS_INVITE_REQUIRED": "true" if invite_required else "false",
            "PDS_CRAWLERS": "",
            "PDS_JWT_SECRET": secrets.token_hex(16),
            "PDS_ADMIN_PASSWORD": admin,
            "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX": secrets.token_hex(32),
            "LOG_ENABLED": "false",
        }
        if plc_database is not None:
            env["TRACKER_PLC_DB_URL"] = plc_database
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [node, str(SCRIPT)],
                cwd=folder,
                env=env,
                stdin=subprocess.PIPE,  # closed by stop() or by our death: the servers exit
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        urls = _wait_ready(process, ready)
        if urls is not None:
            return PdsServers(process, urls, admin)
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        last_log = log_path.read_text(encoding="utf-8", errors="replace")
        if "EADDRINUSE" not in last_log:
            break
    tail = " | ".join(last_log.strip().splitlines()[-8:])
    raise ServersUnavailable(f"the PDS test servers did not start: {tail}")


def _wait_ready(process: subprocess.Popen[bytes], ready: Path) -> dict[str, str] | None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if ready.exists():
            urls: dict[str, str] = json.loads(ready.read_text(encoding="utf-8"))
            return urls
        if process.poll() is not None:
            return None
        time.sleep(0.05)
    return None


def _free_port() -> int:
    for _ in range(50):
        port = random.randrange(*PORT_RANGE)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise ServersUnavailable(f"no free port in {PORT_RANGE} on 127.0.0.1")
