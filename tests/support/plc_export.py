"""A fake PLC directory export on 127.0.0.1, and operations in the real shapes.

Shapes as `@did-plc/server` 0.0.1 exports them (`{did, operation, cid, nullified,
createdAt}` per line, `application/jsonlines`, ordered by createdAt), with the
operations of `@did-plc/lib`: `plc_operation` (services.atproto_pds.endpoint),
the legacy `create` (service), `plc_tombstone`. `seq` mode adds plc.directory's
sequence numbers. The expected counts are computed here from the op list, by a
separate rule from the parser's (a DID's first non-nullified op is its creation),
so a parser bug cannot hide in both.

Endpoints are data only: nothing ever connects to them.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from tests.support.loopback import Reply, Request

JSONL = "application/jsonlines"
SIGNING_KEY = "did:key:zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF"
BSKY_HOSTS = ("https://bsky.social", "https://morel.us-east.host.bsky.network")
BRIDGE = "https://atproto.brid.gy"
THIRD = ("https://pds.example.net", "https://selfhosted.example.org:8443")


def did_of(n: int) -> str:
    letters = hashlib.sha256(str(n).encode()).hexdigest()
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return "did:plc:" + "".join(alphabet[int(c, 16) * 2 % 32] for c in letters[:24])


def cid_of(*parts: Any) -> str:
    return "bafyrei" + hashlib.sha256(repr(parts).encode()).hexdigest()[:52]


def ms(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def genesis(endpoint: str | None, handle: str) -> dict[str, Any]:
    services = (
        {"atproto_pds": {"type": "AtprotoPersonalDataServer", "endpoint": endpoint}}
        if endpoint
        else {}
    )
    return {
        "sig": "x" * 86,
        "prev": None,
        "type": "plc_operation",
        "services": services,
        "alsoKnownAs": [f"at://{handle}"],
        "rotationKeys": ["did:key:zQ3shhCGUqDKjStzuDxPkTxN6ujddP4RkEKJJouJGRRkaLGbg"],
        "verificationMethods": {
            "atproto": "did:key:zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF"
        },
    }


def legacy_create(endpoint: str, handle: str) -> dict[str, Any]:
    return {
        "sig": "y" * 86,
        "prev": None,
        "type": "create",
        "handle": handle,
        "service": endpoint,
        "signingKey": "did:key:zQ3shP5TBe1sQfSttXty15FAEHV1DZgcxRZNxvEWnPfLFwLxJ",
        "recoveryKey": "did:key:zQ3shhCGUqDKjStzuDxPkTxN6ujddP4RkEKJJouJGRRkaLGbg",
    }


def update(prev_cid: str, endpoint: str, handle: str) -> dict[str, Any]:
    return {**genesis(endpoint, handle), "prev": prev_cid}


def tombstone(prev_cid: str) -> dict[str, Any]:
    return {"sig": "z" * 86, "prev": prev_cid, "type": "plc_tombstone"}


@dataclass
class Op:
    did: str
    operation: dict[str, Any]
    created: datetime
    nullified: bool = False
    seq: int | None = None
    cid: str = ""

    def __post_init__(self) -> None:
        if not self.cid:
            self.cid = cid_of(self.did, self.operation, self.created)

    def line(self, with_seq: bool) -> str:
        item: dict[str, Any] = {
            "did": self.did,
            "operation": self.operation,
            "cid": self.cid,
            "nullified": self.nullified,
            "createdAt": ms(self.created),
        }
        if with_seq and self.seq is not None:
            item["seq"] = self.seq
        return json.dumps(item, separators=(",", ":"))


def family(endpoint: str) -> str:
    host = urlsplit(endpoint).hostname or ""
    if host == "atproto.brid.gy":
        return "bridge"
    if host == "bsky.social" or host.endswith(".bsky.network"):
        return "bsky"
    return "third_party"


def expected_counts(ops: list[Op]) -> dict[tuple[date, str], int]:
    """(UTC day, family) -> identities created, by the "first live op of a DID" rule."""
    first: dict[str, Op] = {}
    for op in sorted(ops, key=lambda o: o.created):
        if not op.nullified and op.did not in first:
            first[op.did] = op
    counts: Counter[tuple[date, str]] = Counter()
    for op in first.values():
        kind = op.operation["type"]
        endpoint = op.operation.get("service") or (
            op.operation.get("services", {}).get("atproto_pds", {}).get("endpoint")
        )
        if kind in ("plc_operation", "create") and endpoint:
            counts[(op.created.date(), family(endpoint))] += 1
    return dict(counts)


def history(days: int = 4, per_day: int = 9, start: date = date(2024, 11, 4)) -> list[Op]:
    """A log with every edge case: families, legacy creates, rotations, tombstones,
    nullified ops, and bursts of operations sharing one millisecond."""
    ops: list[Op] = []
    n = 0
    for day in range(days):
        base = datetime(start.year, start.month, start.day, 3, tzinfo=UTC) + timedelta(days=day)
        for i in range(per_day):
            n += 1
            did = did_of(n)
            created = base + timedelta(minutes=7 * i)
            if i % 4 == 3:
                created = base + timedelta(minutes=7 * (i - 1))  # a shared millisecond
            kind = n % 6
            if kind == 0:
                op = Op(did, legacy_create(BSKY_HOSTS[0], f"u{n}.bsky.social"), created)
            elif kind in (1, 2):
                op = Op(did, genesis(BSKY_HOSTS[n % 2], f"u{n}.bsky.social"), created)
            elif kind == 3:
                op = Op(did, genesis(BRIDGE, f"u{n}.ap.brid.gy"), created)
            else:
                op = Op(did, genesis(THIRD[n % 2], f"u{n}.example.net"), created)
            ops.append(op)
            if n % 5 == 0:  # moves to another PDS later: still counted where it started
                moved = created + timedelta(seconds=30)
                ops.append(Op(did, update(op.cid, THIRD[0], f"u{n}.example.net"), moved))
            if n % 7 == 0:
                ops.append(Op(did, tombstone(op.cid), created + timedelta(hours=2)))
        n += 1  # a genesis nullified (a fork that lost), never a sign-up
        ops.append(Op(did_of(n), genesis(BSKY_HOSTS[0], "gone.bsky.social"), base, nullified=True))
    ops.sort(key=lambda o: (o.created, o.cid))
    for index, op in enumerate(ops, start=1):
        op.seq = index * 3  # plc.directory's numbers have gaps
    return ops


Fault = Callable[[Request, int], Reply | None]
"""Given a request and its number (0-based), a reply to send instead, or None."""


@dataclass
class FakeExport:
    """`GET /export?count=&after=` over `ops`, ordered by createdAt (or seq)."""

    ops: list[Op]
    inclusive: bool = True
    """`createdAt >= after` (repeats at the boundary); False: `>` as @did-plc/server."""
    seq: bool = False
    """Serve `seq` on every line and read `after` as a sequence number."""
    max_count: int = 1000
    faults: list[Fault] = field(default_factory=list)
    garbage_lines: dict[int, str] = field(default_factory=dict)
    """Extra raw lines inserted after the op of this index (malformed on purpose)."""
    asked: list[str | None] = field(default_factory=list)
    """`after` of every request, in order."""
    delay: float = 0.0

    def __call__(self, request: Request) -> Reply:
        number = len(self.asked)
        after = request.param("after")
        self.asked.append(after)
        for fault in self.faults:
            reply = fault(request, number)
            if reply is not None:
                return reply
        count = min(int(request.param("count") or 1000), self.max_count)
        chosen = self.select(after)[:count]
        lines: list[str] = []
        for op in chosen:
            lines.append(op.line(self.seq))
            index = self.ops.index(op)
            if index in self.garbage_lines:
                lines.append(self.garbage_lines[index])
        return Reply(body="\n".join(lines), content_type=JSONL, delay=self.delay)

    def select(self, after: str | None) -> list[Op]:
        if after is None:
            return list(self.ops)
        if self.seq:
            bound = int(after)
            return [op for op in self.ops if op.seq is not None and op.seq > bound]
        moment = datetime.fromisoformat(after.replace("Z", "+00:00"))
        if self.inclusive:
            return [op for op in self.ops if op.created >= moment]
        return [op for op in self.ops if op.created > moment]

    def routes(self) -> dict[str, Any]:
        return {"GET /export": self}
