"""Pure parsing of PLC directory export pages: which identities were created when, where.

The export (`GET /export?count=N&after=X`) answers JSON lines, one operation each:
`{"did", "operation", "cid", "nullified", "createdAt"}` (plc.directory adds a `seq`).
A DID's genesis operation (`prev` null; type `plc_operation`, or the legacy `create`)
is its creation, and the PDS it names then (`services.atproto_pds.endpoint`, or the
legacy `service`) is where the account signed up. Later operations (handle changes,
moves to another PDS) and tombstones are not sign-ups; nullified operations never
took effect. So a page is counted on its own, with no memory of earlier pages
except the cursor: what to ask for next, and the operations at the page boundary
already counted.

Why the boundary: `after` is a timestamp on the reference server (`createdAt > after`),
so operations sharing the last millisecond of a page could be cut off. We ask
from one millisecond before the last one seen, which repeats those operations,
and drop the repeats by `cid`. With `seq` (plc.directory), `after` is the last
sequence number and nothing repeats; the cid check costs nothing there.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from tracker.config import DEFAULT_FAMILIES  # noqa: F401 - re-exported; its home is the config default
from tracker.instants import iso_z
from tracker.model import Failure, Fetched, Parsed, PayloadError
from tracker.sanity import Rejection

EXPORT_PATH = "/export"
KIND = "export"
"""Fetch kind of an export page."""
KIND_STOP = "stopped"
"""A note (no request) saying why a run stopped paging: caught up, deadline, max_pages."""
PLATFORM = "bluesky"
METRIC = "accounts_created"
REJECTED = "plc_operation"
"""`metric` of a rejected line in the `rejections` table."""
FALLBACK_FAMILY = "third_party"
GENESIS_TYPES = ("plc_operation", "create")
RAW_SHOWN = 300
"""Characters of a rejected line kept in `rejections.raw_value`."""


@dataclass(frozen=True)
class Cursor:
    """Where the export stopped: what to send as `after`, and the boundary already counted."""

    last_time: datetime | None = None
    last_seq: int | None = None
    boundary: frozenset[str] = frozenset()
    """cids of the operations at `last_time` (all counted or deliberately skipped)."""

    @property
    def after(self) -> str | None:
        if self.last_seq is not None:
            return str(self.last_seq)
        if self.last_time is None:
            return None
        return iso_ms(self.last_time - timedelta(milliseconds=1))

    def dumps(self) -> str:
        return json.dumps(
            {
                "last_time": iso_ms(self.last_time) if self.last_time else None,
                "last_seq": self.last_seq,
                "boundary": sorted(self.boundary),
            },
            sort_keys=True,
        )

    @classmethod
    def loads(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        data = json.loads(text)
        last_time = parse_time(data["last_time"]) if data.get("last_time") else None
        return cls(last_time, data.get("last_seq"), frozenset(data.get("boundary") or ()))


@dataclass
class Page:
    """One page, counted: new identities per (UTC day, family), and the next cursor."""

    cursor: Cursor
    counts: Counter[tuple[date, str]] = field(default_factory=Counter)
    lines: int = 0
    new: int = 0
    """Operations not seen before (whatever their type)."""
    repeated: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    """Not sign-ups: nullified, tombstone, update (not a genesis), no_pds."""
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def created(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class _Op:
    did: str
    cid: str
    created: datetime
    seq: int | None
    nullified: bool
    operation: Mapping[str, Any]


def iso_ms(moment: datetime) -> str:
    """The directory's own spelling of a time (its `after` cursor), to the millisecond."""
    return iso_z(moment, timespec="milliseconds")


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def host_matches(host: str, pattern: str) -> bool:
    pattern = pattern.strip().lower().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def family_of(endpoint: str, families: Mapping[str, Sequence[str]]) -> str:
    """The family of a PDS endpoint URL (a bare host is read as one too)."""
    text = endpoint.strip()
    try:
        host = (urlsplit(text if "://" in text else f"//{text}").hostname or "").rstrip(".")
    except ValueError:
        host = ""
    for family, patterns in families.items():
        if host and any(host_matches(host, pattern) for pattern in patterns):
            return family
    return FALLBACK_FAMILY


def pds_endpoint(operation: Mapping[str, Any]) -> str | None:
    if operation.get("type") == "create":
        service = operation.get("service")
        return service if isinstance(service, str) and service.strip() else None
    services = operation.get("services")
    pds = services.get("atproto_pds") if isinstance(services, dict) else None
    endpoint = pds.get("endpoint") if isinstance(pds, dict) else None
    return endpoint if isinstance(endpoint, str) and endpoint.strip() else None


def _read_line(raw: bytes) -> _Op | str:
    """An operation, or why the line was refused."""
    try:
        item = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "not a JSON object"
    if not isinstance(item, dict):
        return "not a JSON object"
    did, cid, created = item.get("did"), item.get("cid"), item.get("createdAt")
    operation, nullified, seq = item.get("operation"), item.get("nullified", False), item.get("seq")
    if not isinstance(did, str) or not did.startswith("did:plc:"):
        return "no did:plc: `did`"
    if not isinstance(cid, str) or not cid:
        return "no `cid`"
    if not isinstance(operation, dict) or not isinstance(operation.get("type"), str):
        return "no `operation` with a `type`"
    if not isinstance(nullified, bool):
        return "`nullified` is not a boolean"
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int)):
        return "`seq` is not an integer"
    if not isinstance(created, str):
        return "no `createdAt`"
    try:
        moment = parse_time(created)
    except ValueError:
        return f"`createdAt` is not a time: {created[:40]!r}"
    return _Op(did, cid, moment, seq, nullified, operation)


def parse_page(body: bytes, cursor: Cursor, families: Mapping[str, Sequence[str]]) -> Page:
    """Count a page's new identities; raises PayloadError when it is not an export at all.

    A bad line is rejected (kept with its number) and the rest counted; a body
    with no good line (an HTML error page, JSON of something else) is refused
    whole, so the cursor does not move past what it may have hidden.
    """
    start = body.lstrip()[:64].lower()
    if start.startswith((b"<!doctype", b"<html", b"<?xml", b"<")):
        raise PayloadError("not_json", "HTML or XML where JSON lines were expected")
    page = Page(cursor)
    ops = _read_lines(body, page)
    if page.lines and not ops:
        raise PayloadError("bad_json", f"none of {page.lines} lines is an operation")
    for op in ops:
        if _seen(op, cursor):
            page.repeated += 1
            continue
        page.new += 1
        genesis = op.operation.get("type") in GENESIS_TYPES and op.operation.get("prev") is None
        if op.nullified:
            page.skipped["nullified"] += 1
        elif op.operation.get("type") == "plc_tombstone":
            page.skipped["tombstone"] += 1
        elif not genesis:
            page.skipped["update"] += 1
        elif (endpoint := pds_endpoint(op.operation)) is None:
            page.skipped["no_pds"] += 1
        else:
            page.counts[(op.created.date(), family_of(endpoint, families))] += 1
    page.cursor = _advance(cursor, ops)
    return page


def _read_lines(body: bytes, page: Page) -> list[_Op]:
    """The operations of a body; each bad line becomes a rejection naming its number."""
    ops: list[_Op] = []
    for number, line in enumerate(body.split(b"\n"), start=1):
        raw = line.strip()
        if not raw:
            continue
        page.lines += 1
        read = _read_line(raw)
        if isinstance(read, str):
            shown = raw[:RAW_SHOWN].decode("utf-8", errors="replace")
            page.rejections.append(Rejection(REJECTED, shown, f"line {number}: {read}"))
        else:
            ops.append(read)
    return ops


def _seen(op: _Op, cursor: Cursor) -> bool:
    """Already counted by an earlier page (or before the cursor: a server ignoring `after`)."""
    if op.cid in cursor.boundary:
        return True
    if op.seq is not None and cursor.last_seq is not None:
        return op.seq <= cursor.last_seq
    return cursor.last_time is not None and op.created < cursor.last_time


def _advance(cursor: Cursor, ops: Sequence[_Op]) -> Cursor:
    if not ops:
        return cursor
    newest = max(op.created for op in ops)
    last_time = cursor.last_time
    if last_time is None or newest > last_time:
        last_time, boundary = newest, frozenset[str]()
    else:
        boundary = cursor.boundary
    boundary |= {op.cid for op in ops if op.created == last_time}
    seqs = [op.seq for op in ops if op.seq is not None]
    last_seq = cursor.last_seq
    if seqs and len(seqs) == len(ops):  # only a server numbering every operation
        last_seq = max(seqs + ([last_seq] if last_seq is not None else []))
    return Cursor(last_time, last_seq, boundary)


def parse(
    target: str,
    records: Sequence[Fetched],
    observed_at: datetime,
    *,
    families: Mapping[str, Sequence[str]],
) -> Parsed:
    """What the attempt log says (used by `tracker reparse`): rejections and failures.

    The counts are not in here: each page's counts were added to the stored day
    totals in the same transaction as the cursor (tracker/collectors/plc.py), and
    a page read on its own cannot say which of its operations an earlier page had
    already counted. So reparse rebuilds rejections and outcomes, never counts.
    """
    parsed = Parsed(platform=PLATFORM)
    for record in records:
        if record.kind != KIND:
            continue
        if not record.ok:
            detail = record.error_detail or f"HTTP {record.status}"
            parsed.failure = Failure(record.error_kind or "http_error", detail)
            continue
        try:
            page = parse_page(record.body or b"", Cursor(), families)
        except PayloadError as exc:
            parsed.failure = Failure(exc.kind, exc.detail)
            continue
        parsed.rejections.extend(page.rejections)
    return parsed
