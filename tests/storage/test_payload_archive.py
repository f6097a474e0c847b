"""The payload archive in the database: chains of deltas written through the Store,
read back, pruned in the middle, copied, and migrated down and up."""

from __future__ import annotations

import json
import random
import zlib
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, delete, inspect, select, update

from tracker.model import Fetched, TargetResult
from tracker.parsers import fediverse as p
from tracker.storage import payload_codec as codec
from tracker.storage.copy import copy_database
from tracker.storage.engine import _alembic_config, open_database, write_transaction
from tracker.storage.payload_archive import PayloadReader, PayloadWriter, digest_of
from tracker.storage.prune import prune_payloads
from tracker.storage.schema import fetches, payloads
from tracker.storage.store import Store

T0 = datetime(2026, 11, 1, tzinfo=UTC)
HOST = "s.example"


def nodeinfo(users: int, name: str = "S") -> bytes:
    return json.dumps(
        {
            "version": "2.0",
            "software": {"name": "mastodon", "version": "4.3.2"},
            "protocols": ["activitypub"],
            "usage": {
                "users": {"total": users, "activeMonth": users // 7},
                "localPosts": users * 9,
            },
            "openRegistrations": True,
            "metadata": {"nodeName": name, "nodeDescription": "A server " * 40},
        }
    ).encode()


class Fleet:
    """Versions of one server's bodies: NodeInfo changes every time, peers a little."""

    def __init__(self, seed: int = 1) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.peers = [f"peer{n}.example" for n in range(400)]
        self.users = 1000
        self.count = 0

    def bodies(self) -> list[tuple[str, bytes]]:
        self.count += 1
        self.users += self.rng.randint(1, 30)
        for _ in range(self.rng.randint(1, 4)):
            self.peers.remove(self.rng.choice(self.peers))
            self.peers.append(f"new{self.count}-{self.rng.randint(0, 10**6)}.example")
        shuffled = self.peers[:]
        self.rng.shuffle(shuffled)  # servers list peers in no particular order
        return [
            ("robots.txt", b"User-agent: *\nDisallow: /media_proxy/\n"),
            (p.NODEINFO, nodeinfo(self.users, f"S{self.seed}")),
            (p.PEERS, json.dumps(shuffled).encode()),
        ]


def result(at: datetime, bodies: list[tuple[str, bytes]], target: str = HOST) -> TargetResult:
    fetched = [
        Fetched(kind, f"https://{target}/{kind}", at, status=200, body=body)
        for kind, body in bodies
    ]
    return TargetResult("fediverse", target, "ok", at, fetched)


def write(store: Store, at: datetime, results: list[TargetResult]) -> None:
    run_id = store.start_run("fediverse", at)
    store.write_targets(run_id, results)
    store.finish_run(run_id, at, "ok", {"targets_ok": len(results)})


def payload_rows(engine: Engine) -> list[tuple[Any, ...]]:
    column = payloads.c
    query = select(
        column.sha256, column.codec, column.base_sha256, column.depth, column.body
    ).order_by(column.sha256)
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query)]


def linked_digests(connection: Connection) -> list[str]:
    """The digest of every body a fetch log row names (by its integer key)."""
    query = select(payloads.c.sha256).join(fetches, fetches.c.payload_id == payloads.c.id)
    return list(connection.execute(query).scalars())


def fetch_links(connection: Connection) -> list[tuple[int, str | None]]:
    query = (
        select(fetches.c.id, payloads.c.sha256)
        .outerjoin(payloads, payloads.c.id == fetches.c.payload_id)
        .order_by(fetches.c.id)
    )
    return [(int(i), d) for i, d in connection.execute(query)]


def read_back(engine: Engine) -> dict[str, bytes]:
    """Every body a fetch log row still names, decoded."""
    with engine.connect() as connection:
        digests = linked_digests(connection)
        found = PayloadReader().read(connection, digests)
    assert set(found) == set(digests)
    return {digest: base.decoded.body for digest, base in found.items()}


def same_reading(original: bytes, stored: bytes, kind: str) -> None:
    if kind == p.PEERS:
        assert Counter(json.loads(stored)) == Counter(json.loads(original))
        assert stored == json.dumps(sorted(json.loads(original)), separators=(",", ":")).encode()
    else:
        assert stored == original


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tracker.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = open_database(url)
    yield engine
    engine.dispose()


def history(versions: int, seed: int = 1) -> list[tuple[datetime, list[tuple[str, bytes]]]]:
    fleet = Fleet(seed)
    return [(T0 + timedelta(days=n), fleet.bodies()) for n in range(versions)]


def test_a_chain_longer_than_max_depth_reads_back_every_version(engine: Engine) -> None:
    versions = 2 * (codec.MAX_DEPTH + 1) + 5
    plan = history(versions)
    store = Store(engine)
    for at, bodies in plan:
        write(store, at, [result(at, bodies)])
    rows = {row[0]: row for row in payload_rows(engine)}
    read = read_back(engine)
    for _, bodies in plan:
        for kind, body in bodies:
            same_reading(body, read[digest_of(body)], kind)
    for kind in (p.NODEINFO, p.PEERS):
        depths = [rows[digest_of(dict(bodies)[kind])][3] for _, bodies in plan]
        expected = [n % (codec.MAX_DEPTH + 1) for n in range(versions)]
        assert depths == expected, kind
        codecs = {rows[digest_of(dict(bodies)[kind])][1] for _, bodies in plan}
        assert codecs == (
            {codec.ZLIB, codec.ZDELTA} if kind == p.NODEINFO else {codec.SETFULL, codec.SETDIFF}
        )
    robots = [row for row in rows.values() if row[1] == codec.ZLIB and row[3] == 0]
    assert len(rows) == 1 + 2 * versions  # robots.txt once
    assert robots


def test_a_writer_without_memory_finds_the_previous_version_in_the_fetch_log(
    engine: Engine, tmp_path: Path
) -> None:
    """A new Store per crawl (a new `tracker crawl` process) writes the same rows as one
    that remembers: the previous version comes from the target's last attempts."""
    plan = history(40, seed=2)
    warm = Store(engine)
    cold_engine = open_database(f"sqlite:///{tmp_path / 'cold.db'}")
    for at, bodies in plan:
        write(warm, at, [result(at, bodies)])
        write(Store(cold_engine), at, [result(at, bodies)])
    assert payload_rows(cold_engine) == payload_rows(engine)
    cold_engine.dispose()


def test_a_target_that_missed_crawls_still_continues_its_chain(engine: Engine) -> None:
    plan = history(6, seed=3)
    for index, (at, bodies) in enumerate(plan):
        failed = [result(at, [])] if index in (3, 4) else []  # answered nothing twice
        write(Store(engine), at, [*failed] or [result(at, bodies)])
    rows = {row[0]: row for row in payload_rows(engine)}
    last = dict(plan[5][1])
    before = dict(plan[2][1])
    assert rows[digest_of(last[p.NODEINFO])][2] == digest_of(before[p.NODEINFO])


def test_many_targets_in_one_transaction_each_get_their_own_chain(engine: Engine) -> None:
    fleets = {f"s{n}.example": Fleet(n) for n in range(5)}
    for day in range(4):
        at = T0 + timedelta(days=day)
        write(Store(engine), at, [result(at, f.bodies(), host) for host, f in fleets.items()])
    rows = payload_rows(engine)
    assert sum(1 for row in rows if row[1] == codec.SETDIFF) == 5 * 3
    assert sum(1 for row in rows if row[1] == codec.ZDELTA) == 5 * 3
    read_back(engine)


def test_prune_in_the_middle_of_a_chain_keeps_the_bases_kept_rows_need(engine: Engine) -> None:
    plan = history(50, seed=4)
    store = Store(engine)
    for at, bodies in plan:
        write(store, at, [result(at, bodies)])
    before = {row[0]: row for row in payload_rows(engine)}
    cutoff = T0 + timedelta(days=40)  # versions 0..39 old; 40.. use 32..39 as bases
    dry = prune_payloads(engine, cutoff, dry_run=True)
    summary = prune_payloads(engine, cutoff, vacuum=False)
    after = {row[0]: row for row in payload_rows(engine)}
    assert (dry.payloads, dry.kept_as_base) == (summary.payloads, summary.kept_as_base)

    for kind in (p.NODEINFO, p.PEERS):
        digests = [digest_of(dict(bodies)[kind]) for _, bodies in plan]
        kept = [n for n, digest in enumerate(digests) if digest in after]
        assert kept == list(range(32, 50)), kind  # from the last whole copy before the cutoff
    assert summary.kept_as_base == 2 * 8
    assert summary.payloads == len(before) - len(after) == 2 * 32
    assert digest_of(plan[0][1][0][1]) in after  # robots.txt: fetched recently too

    # Kept old rows keep their fetch log rows: their attempts can still be reparsed.
    read = read_back(engine)
    for _, bodies in plan[32:]:
        for kind, body in bodies:
            same_reading(body, read[digest_of(body)], kind)
    with engine.connect() as connection:
        linked = set(linked_digests(connection))
    assert linked == set(after)

    # Once the kept rows that need them are old too, they go.
    later = prune_payloads(engine, T0 + timedelta(days=60), vacuum=False)
    assert later.kept_as_base == 0
    assert payload_rows(engine) == []


def test_a_prune_keeps_a_base_a_new_row_needs_even_when_it_is_in_a_later_batch(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deepest first, in small batches: each batch sees what stays outside it."""
    monkeypatch.setattr("tracker.storage.prune.BATCH", 3)
    plan = history(20, seed=5)
    store = Store(engine)
    for at, bodies in plan:
        write(store, at, [result(at, bodies)])
    prune_payloads(engine, T0 + timedelta(days=19), vacuum=False)
    read = read_back(engine)
    for kind, body in plan[19][1]:
        same_reading(body, read[digest_of(body)], kind)


def test_a_base_gone_from_under_a_writer_makes_it_write_the_body_whole(engine: Engine) -> None:
    """A prune beside a collection (PostgreSQL), or a writer's stale memory."""
    plan = history(3, seed=6)
    store = Store(engine)
    write(store, plan[0][0], [result(*plan[0])])
    write(store, plan[1][0], [result(*plan[1])])
    second = {digest_of(body) for _, body in plan[1][1][1:]}
    with write_transaction(engine) as connection:
        keys = select(payloads.c.id).where(payloads.c.sha256.in_(second))
        connection.execute(
            update(fetches).values(payload_id=None).where(fetches.c.payload_id.in_(keys))
        )
        connection.execute(delete(payloads).where(payloads.c.sha256.in_(second)))
    write(store, plan[2][0], [result(*plan[2])])  # its memory names the rows just deleted
    assert store.archive.rebased == 2
    rows = {row[0]: row for row in payload_rows(engine)}
    for kind, body in plan[2][1][1:]:
        assert rows[digest_of(body)][1:4] == (
            codec.SETFULL if kind == p.PEERS else codec.ZLIB,
            None,
            0,
        )
    read_back(engine)


def test_a_set_diff_never_stands_on_a_row_that_is_not_a_set(engine: Engine) -> None:
    """Another writer may have stored the same body byte for byte first."""
    plan = history(2, seed=7)
    store = Store(engine)
    write(store, plan[0][0], [result(*plan[0])])
    peers = dict(plan[0][1])[p.PEERS]
    with write_transaction(engine) as connection:
        connection.execute(
            update(payloads)
            .where(payloads.c.sha256 == digest_of(peers))
            .values(codec=codec.ZLIB, body=zlib.compress(peers))
        )
    write(store, plan[1][0], [result(*plan[1])])
    rows = {row[0]: row for row in payload_rows(engine)}
    assert rows[digest_of(dict(plan[1][1])[p.PEERS])][1] == codec.SETFULL
    read_back(engine)


def test_rows_from_before_the_deltas_stay_readable_and_serve_as_bases(engine: Engine) -> None:
    plan = history(3, seed=8)
    old = Store(engine)
    old.archive = PayloadWriter(deltas=False)  # what revision 0004's writer stored
    write(old, plan[0][0], [result(*plan[0])])
    assert {row[1:4] for row in payload_rows(engine)} == {(codec.ZLIB, None, 0)}
    for at, bodies in plan[1:]:
        write(Store(engine), at, [result(at, bodies)])
    rows = {row[0]: row for row in payload_rows(engine)}
    first, second = dict(plan[0][1]), dict(plan[1][1])
    assert rows[digest_of(second[p.NODEINFO])][1:3] == (codec.ZDELTA, digest_of(first[p.NODEINFO]))
    assert rows[digest_of(second[p.PEERS])][1:3] == (codec.SETFULL, None)  # base not a set
    read = read_back(engine)
    assert read[digest_of(first[p.PEERS])] == first[p.PEERS]  # old rows: byte for byte


def test_the_comparison_mode_writes_only_zlib(engine: Engine) -> None:
    store = Store(engine)
    store.archive = PayloadWriter(deltas=False)
    for at, bodies in history(5, seed=9):
        write(store, at, [result(at, bodies)])
    assert {row[1:4] for row in payload_rows(engine)} == {(codec.ZLIB, None, 0)}
    for row in payload_rows(engine):
        assert digest_of(zlib.decompress(row[4])) == row[0]


def test_db_copy_copies_the_delta_columns(engine: Engine, tmp_path: Path) -> None:
    store = Store(engine)
    for at, bodies in history(10, seed=10):
        write(store, at, [result(at, bodies)])
    target = open_database(f"sqlite:///{tmp_path / 'copy.db'}")
    reports = copy_database(engine, target, batch_rows=4)  # bases land in other batches
    assert all(report.matches for report in reports)
    assert payload_rows(target) == payload_rows(engine)
    assert any(row[2] is not None for row in payload_rows(target))
    assert read_back(target) == read_back(engine)
    target.dispose()


def migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    with write_transaction(engine) as connection:
        config = _alembic_config()
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def test_migration_0005_down_writes_every_row_as_zlib_and_up_again(engine: Engine) -> None:
    plan = history(40, seed=11)
    store = Store(engine)
    for at, bodies in plan:
        write(store, at, [result(at, bodies)])
    read = read_back(engine)
    with engine.connect() as connection:
        links_before = fetch_links(connection)
    migrate(engine, "0004", down=True)
    columns = {c["name"] for c in inspect(engine).get_columns("payloads")}
    assert columns == {"sha256", "size", "codec", "body", "first_seen"}
    with engine.connect() as connection:
        rows = list(
            connection.execute(select(payloads.c.sha256, payloads.c.codec, payloads.c.body))
        )
        old_links = "SELECT id, payload_sha256 FROM fetches ORDER BY id"
        assert list(map(tuple, connection.exec_driver_sql(old_links))) == links_before
    assert {codec_name for _, codec_name, _ in rows} == {"zlib"}
    assert {sha: zlib.decompress(body) for sha, _, body in rows} == read
    migrate(engine, "head")
    assert read_back(engine) == read
    with engine.connect() as connection:
        assert fetch_links(connection) == links_before  # 0007 keys the links by integer


def test_migration_0007_keys_the_fetch_log_by_integer_and_back(engine: Engine) -> None:
    """Down to digests and up again: every fetch row names the same body, nothing is lost."""
    plan = history(12, seed=12)
    store = Store(engine)
    for at, bodies in plan:
        write(store, at, [result(at, bodies)])
    read = read_back(engine)
    with engine.connect() as connection:
        links_before = fetch_links(connection)
        keys_before = sorted(connection.execute(select(payloads.c.id, payloads.c.sha256)).all())
    assert any(digest is not None for _, digest in links_before)
    migrate(engine, "0005", down=True)
    assert "payload_id" not in {c["name"] for c in inspect(engine).get_columns("fetches")}
    with engine.connect() as connection:
        old_links = "SELECT id, payload_sha256 FROM fetches ORDER BY id"
        assert list(map(tuple, connection.exec_driver_sql(old_links))) == links_before
    migrate(engine, "head")
    with engine.connect() as connection:
        assert fetch_links(connection) == links_before
        keys_after = connection.execute(select(payloads.c.sha256)).scalars().all()
        if engine.dialect.name == "sqlite":  # the renamed tables' foreign keys hold
            assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    assert sorted(keys_after) == sorted(sha for _, sha in keys_before)
    assert read_back(engine) == read
