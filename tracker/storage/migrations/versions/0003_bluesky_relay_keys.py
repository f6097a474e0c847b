"""Bluesky: a relay's readings get targets of their own, apart from PDS enumerations.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05

Before this revision a relay stored its network total and `servers_total` under the
relay's own `host[:port]`, and its reading of each host under that host's name: the
keys a PDS enumeration uses too. A URL configured both as relay and as PDS, or a PDS
the relay also lists, wrote two different counts into one series. From now on:
`relay:<relay>` holds a relay's `users_total` and `servers_total`,
`relay:<relay>/<host>` its reading of one host, and the plain host key a PDS's own
enumeration only. This revision moves the points already stored.

How a point is attributed. A point carries its run; an attempt its run, target and
start (to the second, which is the `observed_at` of everything it wrote); the fetch log
tells a relay attempt (`listHosts`) from a PDS attempt (`describeServer`, `listRepos`).

- `servers_total`: only a relay's total wrote it, so the whole series moves to
  `relay:<target>`. `users_active` and `registrations_open`: only a PDS, they stay.
- `users_total` at (run, second): the candidates are the attempts of that run that
  started in that second and could have written it: a PDS attempt of this target that
  succeeded (a PDS stores `users_total` exactly when it succeeds), and every relay
  attempt (its total, if it is this target's relay and stored a `servers_total` then;
  else its reading of this host). A run wrote its targets in attempt order, so the
  stored number is from the latest candidate that wrote one. Walking back from the
  latest: a PDS, or a relay's total, is certain; a relay's reading of the host is
  certain when no earlier candidate is left, and otherwise the relay's archived
  `listHosts` pages say whether it listed the host with a count.

The best safe thing where that cannot be decided (the pages were pruned, or the point
has no run: imported, or its run was deleted): the point moves to
`unattributed:<target>`. No number is lost, and none stays under a key whose meaning
it may not have; `tracker reparse` rebuilds such a run under the right keys while its
archive is complete. Host names are compared as the relay listed them, lower-cased
(an internationalised name listed in Unicode is not recognised: its reading then
counts as not listed). A new key longer than the 255 characters a target holds
leaves the point where it is. A relay total refused as implausible (over 10 billion)
beside a stored `servers_total` is not told apart from a stored total.

Downgrade merges the series back under the old keys; a point that would collide with
one already there stays under its new key.
"""

import json
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCE = "bluesky"
RELAY = "relay:"
UNATTRIBUTED = "unattributed:"
TARGET_MAX = 255
MAX_COUNT = 10_000_000_000
RELAY_KINDS = frozenset({"listHosts"})
PDS_KINDS = frozenset({"describeServer", "listRepos"})
CHUNK = 500
"""Series whose points are read at once (a year of a relay's hosts is millions of points)."""

# Frozen here on purpose: a migration must not change when schema.py does.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_meta = sa.MetaData()
series = sa.Table(
    "series",
    _meta,
    sa.Column("id", Id, primary_key=True),
    sa.Column("source", sa.String(32)),
    sa.Column("platform", sa.String(64)),
    sa.Column("target", sa.String(255)),
    sa.Column("metric", sa.String(64)),
    sa.Column("period", sa.String(8)),
)
points = sa.Table(
    "points",
    _meta,
    sa.Column("series_id", Id, primary_key=True),
    sa.Column("observed_at", sa.BigInteger(), primary_key=True),
    sa.Column("value", sa.BigInteger()),
    sa.Column("run_id", Id),
)
attempts = sa.Table(
    "attempts",
    _meta,
    sa.Column("id", Id, primary_key=True),
    sa.Column("run_id", Id),
    sa.Column("source", sa.String(32)),
    sa.Column("target", sa.String(255)),
    sa.Column("outcome", sa.String(16)),
    sa.Column("started_at", sa.DateTime()),
)
fetches = sa.Table(
    "fetches",
    _meta,
    sa.Column("id", Id, primary_key=True),
    sa.Column("attempt_id", Id),
    sa.Column("seq", sa.Integer()),
    sa.Column("kind", sa.String(64)),
    sa.Column("bytes", sa.Integer()),
    sa.Column("payload_sha256", sa.String(64)),
)
payloads = sa.Table(
    "payloads",
    _meta,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("codec", sa.String(8)),
    sa.Column("body", sa.LargeBinary()),
)

Moment = tuple[int, int]  # run id, Unix second


@dataclass(frozen=True)
class Attempt:
    id: int
    target: str
    role: str  # relay | pds
    ok: bool


@dataclass
class Evidence:
    """What the runs, attempts and fetch log say about who wrote a bluesky point."""

    moments: dict[Moment, list[Attempt]]
    totals: set[tuple[str, int, int]]
    """(relay target, run, second) at which a relay stored its `servers_total`."""
    listed: dict[int, tuple[frozenset[str], bool]] = field(default_factory=dict)
    """A relay attempt's listed hosts (with a count), and whether every page was archived."""


def upgrade() -> None:
    bind = op.get_bind()
    rows = _series_rows(bind)
    if not rows:
        return
    evidence = Evidence(_moments(bind), _relay_totals(bind))
    for row in rows:
        if row.metric == "servers_total":
            _move(bind, row, {None: RELAY + row.target})
    users = [row for row in rows if row.metric == "users_total"]
    for start in range(0, len(users), CHUNK):
        chunk = users[start : start + CHUNK]
        readings = _points_of(bind, [row.id for row in chunk])
        for row in chunk:
            plan: dict[int | None, str] = {
                at: _attribute(bind, evidence, row.target, run_id, at)
                for at, run_id in readings.get(row.id, ())
            }
            if plan and len(set(plan.values())) == 1:
                plan = {None: next(iter(plan.values()))}  # the whole series
            _move(bind, row, plan)


def downgrade() -> None:
    bind = op.get_bind()
    for row in _series_rows(bind):
        old = _old_target(row.target)
        if old is not None:
            _move(bind, row, {None: old})


def _series_rows(bind: sa.Connection) -> list[Any]:
    return list(
        bind.execute(
            sa.select(series).where(series.c.source == SOURCE, series.c.period == "")
        ).all()
    )


def _moments(bind: sa.Connection) -> dict[Moment, list[Attempt]]:
    """Bluesky attempts by (run, start second), latest first, each with its role."""
    kinds: dict[int, set[str]] = defaultdict(set)
    for attempt_id, kind in bind.execute(
        sa.select(fetches.c.attempt_id, fetches.c.kind)
        .join(attempts, attempts.c.id == fetches.c.attempt_id)
        .where(attempts.c.source == SOURCE)
        .distinct()
    ):
        kinds[int(attempt_id)].add(str(kind))
    moments: dict[Moment, list[Attempt]] = defaultdict(list)
    for row in bind.execute(sa.select(attempts).where(attempts.c.source == SOURCE)):
        seen = kinds.get(int(row.id), set())
        role = "relay" if seen & RELAY_KINDS else "pds" if seen & PDS_KINDS else None
        if role is None:
            continue  # never asked anything (an internal error): wrote nothing
        attempt = Attempt(int(row.id), str(row.target), role, row.outcome == "ok")
        moments[(int(row.run_id), _unix(row.started_at))].append(attempt)
    for listed in moments.values():
        listed.sort(key=lambda attempt: attempt.id, reverse=True)
    return moments


def _relay_totals(bind: sa.Connection) -> set[tuple[str, int, int]]:
    query = (
        sa.select(series.c.target, points.c.run_id, points.c.observed_at)
        .join(points, points.c.series_id == series.c.id)
        .where(series.c.source == SOURCE, series.c.metric == "servers_total")
        .where(points.c.run_id.is_not(None))
    )
    return {(str(t), int(run), int(at)) for t, run, at in bind.execute(query)}


def _points_of(bind: sa.Connection, ids: Sequence[int]) -> dict[int, list[tuple[int, int | None]]]:
    readings: dict[int, list[tuple[int, int | None]]] = defaultdict(list)
    query = sa.select(points.c.series_id, points.c.observed_at, points.c.run_id).where(
        points.c.series_id.in_(ids)
    )
    for series_id, at, run_id in bind.execute(query).all():
        readings[int(series_id)].append((int(at), None if run_id is None else int(run_id)))
    return readings


def _attribute(
    bind: sa.Connection, evidence: Evidence, target: str, run_id: int | None, at: int
) -> str:
    """The new target of one `users_total` point (see the module docstring)."""
    if run_id is None:
        return UNATTRIBUTED + target
    candidates = [
        attempt
        for attempt in evidence.moments.get((run_id, at), ())
        if attempt.role == "relay" or (attempt.target == target and attempt.ok)
    ]
    for index, attempt in enumerate(candidates):
        if attempt.role == "pds":
            return target
        if attempt.target == target and (target, run_id, at) in evidence.totals:
            return RELAY + target
        if index == len(candidates) - 1:
            return f"{RELAY}{attempt.target}/{target}"  # someone wrote it: the last one left
        listed = _lists(bind, evidence, attempt.id, target)
        if listed is None:
            break
        if listed:
            return f"{RELAY}{attempt.target}/{target}"
    return UNATTRIBUTED + target


def _lists(bind: sa.Connection, evidence: Evidence, attempt_id: int, host: str) -> bool | None:
    """Whether a relay attempt listed `host` with a count; None if its pages are gone."""
    if attempt_id not in evidence.listed:
        evidence.listed[attempt_id] = _listed_hosts(bind, attempt_id)
    hosts, complete = evidence.listed[attempt_id]
    if host in hosts:
        return True
    return False if complete else None


def _listed_hosts(bind: sa.Connection, attempt_id: int) -> tuple[frozenset[str], bool]:
    query = (
        sa.select(fetches.c.bytes, payloads.c.codec, payloads.c.body)
        .outerjoin(payloads, payloads.c.sha256 == fetches.c.payload_sha256)
        .where(fetches.c.attempt_id == attempt_id, fetches.c.kind.in_(RELAY_KINDS))
        .order_by(fetches.c.seq)
    )
    hosts: set[str] = set()
    complete = True
    for size, codec, body in bind.execute(query):
        if body is None or codec != "zlib":
            complete = complete and not size
            continue
        hosts.update(_hosts_of(zlib.decompress(body)))
    return frozenset(hosts), complete


def _hosts_of(body: bytes) -> Iterator[str]:
    """Host names a `listHosts` page lists with a plausible `accountCount`."""
    try:
        document = json.loads(body)
    except ValueError:
        return
    entries = document.get("hosts") if isinstance(document, dict) else None
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict) or not isinstance(entry.get("hostname"), str):
            continue
        if _plausible(entry.get("accountCount")):
            yield entry["hostname"].strip().rstrip(".").lower()


def _plausible(count: Any) -> bool:
    if isinstance(count, str) and count.strip().isdigit():
        count = int(count.strip())
    elif isinstance(count, float) and count.is_integer():
        count = int(count)
    return isinstance(count, int) and not isinstance(count, bool) and 0 <= count <= MAX_COUNT


def _move(bind: sa.Connection, row: Any, plan: dict[int | None, str]) -> None:
    """Points of a series to new targets: `{None: target}` moves all of them (a rename
    when nothing is there yet), `{second: target}` one point each."""
    by_target: dict[str, list[int | None]] = defaultdict(list)
    for at, target in plan.items():
        if target != row.target and len(target) <= TARGET_MAX:
            by_target[target].append(at)
    for target, moments in by_target.items():
        existing = _find(bind, row, target)
        if existing is None and moments == [None]:
            bind.execute(sa.update(series).where(series.c.id == row.id).values(target=target))
            return
        destination = existing if existing is not None else _create(bind, row, target)
        _move_points(bind, row.id, destination, moments)
    left = sa.select(points.c.series_id).where(points.c.series_id == row.id)
    if by_target and bind.execute(left).first() is None:
        bind.execute(sa.delete(series).where(series.c.id == row.id))  # emptied by the move


def _move_points(
    bind: sa.Connection, source: int, destination: int, moments: Iterable[int | None]
) -> None:
    """Move points, never over one the destination already holds."""
    taken = {
        int(at)
        for (at,) in bind.execute(
            sa.select(points.c.observed_at).where(points.c.series_id == destination)
        )
    }
    wanted = set(moments)
    if None in wanted:
        wanted = {
            int(at)
            for (at,) in bind.execute(
                sa.select(points.c.observed_at).where(points.c.series_id == source)
            )
        }
    chosen = sorted(int(at) for at in wanted if at is not None and at not in taken)
    if not chosen:
        return
    bind.execute(
        sa.update(points)
        .where(points.c.series_id == source, points.c.observed_at == sa.bindparam("at"))
        .values(series_id=destination),
        [{"at": at} for at in chosen],
    )


def _find(bind: sa.Connection, row: Any, target: str) -> int | None:
    found = bind.execute(
        sa.select(series.c.id).where(
            series.c.source == row.source,
            series.c.target == target,
            series.c.metric == row.metric,
            series.c.period == row.period,
        )
    ).scalar()
    return None if found is None else int(found)


def _create(bind: sa.Connection, row: Any, target: str) -> int:
    bind.execute(
        sa.insert(series).values(
            source=row.source,
            platform=row.platform,
            target=target,
            metric=row.metric,
            period=row.period,
        )
    )
    created = _find(bind, row, target)
    assert created is not None
    return created


def _old_target(target: str) -> str | None:
    """The key a series had before this revision, or None if it kept it."""
    if target.startswith(UNATTRIBUTED):
        return target.removeprefix(UNATTRIBUTED)
    if target.startswith(RELAY):
        relay, _, host = target.removeprefix(RELAY).partition("/")
        return host or relay
    return None


def _unix(moment: datetime | str) -> int:
    """An attempt's start as the Unix second its points carry (the column is naive UTC)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())
