"""`tracker reparse` over bodies stored as deltas (payload_codec.py) gives exactly the
observations the bodies as received gave, `peers_total` included, also after a prune
in the middle of the chains. Peer lists come back canonical (sorted, compact), not
byte for byte: these tests are the proof that the parsers read them alike."""

from __future__ import annotations

import json
import random
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Workspace
from tests.support.loopback import Loopback
from tests.support.sites import MastodonSpec, iso
from tracker.model import Fetched, TargetResult
from tracker.parsers import fediverse as p
from tracker.storage import payload_codec as codec
from tracker.storage.engine import open_database
from tracker.storage.payload_archive import PayloadReader, digest_of
from tracker.storage.store import Store

DAY0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
JUNK = ["DUP.example", "dup.example", "dup.example", "192.0.2.7", "", "x" * 300, "例え.テスト"]


def codecs(ws: Workspace) -> dict[str, int]:
    with sqlite3.connect(ws.db) as db:
        return dict(db.execute("SELECT codec, COUNT(*) FROM payloads GROUP BY codec").fetchall())


def points_gone(ws: Workspace) -> None:
    with sqlite3.connect(ws.db) as db:
        db.execute("DELETE FROM points")
    assert ws.export() == []


def peers_rows(export: list[dict[str, str]]) -> list[tuple[str, str, str]]:
    return sorted(
        (row["target"], row["observed_at"], row["value"])
        for row in export
        if row["metric"] == "peers_total"
    )


def test_reparse_of_collected_deltas_gives_the_same_observations(
    workspace: Workspace, loopback: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whole copies every 3 versions, so a prune in the middle removes whole old chains
    # and keeps the old part of the chain the newest versions stand on.
    monkeypatch.setattr(codec, "MAX_DEPTH", 2)
    rng = random.Random(4)
    spec = MastodonSpec()
    pool = [f"peer{n}.example" for n in range(600)]
    peers = pool[:300]
    site = loopback.add(spec.routes(DAY0))
    workspace.write_config({"collectors": {"fediverse": {"instances": [site.url]}}})
    for day in range(8):
        now = DAY0 + timedelta(days=day)
        spec.users += 17 * day
        spec.posts += 1000
        peers = [peer for peer in peers if rng.random() > 0.02] + rng.sample(pool, 5)
        spec.peers = rng.sample(peers, len(peers)) + JUNK  # in no order, with junk
        site.routes.update(spec.routes(now))
        assert workspace.cli("collect", TRACKER_NOW=iso(now)).returncode == 0
    stored = codecs(workspace)
    assert stored.get(codec.SETDIFF) and stored.get(codec.ZDELTA)  # chains were written

    # Peer lists read back canonical: not the bytes received (not their sha256).
    engine = open_database(workspace.db_url)
    with engine.connect() as connection:
        digests = [
            d
            for (d,) in connection.exec_driver_sql(
                "SELECT p.sha256 FROM fetches AS f JOIN payloads AS p ON p.id = f.payload_id "
                "WHERE f.kind = 'mastodon_peers'"
            )
        ]
        read = PayloadReader().read(connection, digests)
    engine.dispose()
    assert all(digest_of(read[d].decoded.body) != d for d in digests)

    before = workspace.export()
    distinct = len({peer for peer in spec.peers if isinstance(peer, str)})
    assert peers_rows(before)[-1][2] == str(distinct)
    points_gone(workspace)
    result = workspace.cli("reparse")
    assert result.returncode == 0, result.stderr
    assert "reparsed 8 attempts" in result.stdout
    assert workspace.export() == before

    # A prune in the middle of the chains: the kept attempts still reparse whole.
    now = DAY0 + timedelta(days=7, hours=1)
    pruned = workspace.cli("db", "prune", "--payloads-older-than", "4d", TRACKER_NOW=iso(now))
    assert pruned.returncode == 0, pruned.stderr
    assert "stayed as the base of newer ones" in pruned.stdout
    result = workspace.cli("reparse")
    assert result.returncode == 0, result.stderr
    assert "reparsed 5 attempts" in result.stdout  # days 3-7: day 3 is stood on
    assert "3 attempts had pruned payloads" in result.stdout
    assert workspace.export() == before


def misskey_object(host: str, notes: int) -> dict[str, Any]:
    return {
        "id": f"9x{abs(hash(host)) % 10**8:08d}",
        "firstRetrievedAt": "2023-02-01T00:00:00.000Z",
        "host": host,
        "usersCount": 12,
        "notesCount": notes,
        "isNotResponding": False,
        "softwareName": "misskey",
        "softwareVersion": "2024.11.0",
        "latestRequestReceivedAt": "2026-11-01T00:00:00.000Z",
    }


def misskey_records(at: datetime, hosts: list[str], rng: random.Random) -> list[Fetched]:
    listing = [misskey_object(h, rng.randint(0, 10**6)) for h in hosts]
    listing.append(misskey_object(hosts[0], 1))  # a server listed twice
    pages = [listing[i : i + p.MISSKEY_PAGE] for i in range(0, len(listing), p.MISSKEY_PAGE)]
    nodeinfo = {
        "version": "2.1",
        "software": {"name": "misskey", "version": "2024.11.0"},
        "protocols": ["activitypub"],
        "usage": {"users": {"total": 5000 + len(hosts)}, "localPosts": 10**6},
        "openRegistrations": True,
        "metadata": {},
    }
    base = "https://misskey.example"
    return [
        Fetched(p.NODEINFO, base + "/nodeinfo/2.1", at, status=200, body=dumps(nodeinfo)),
        *(
            Fetched(
                p.MISSKEY_INSTANCES,
                base + "/api/federation/instances",
                at,
                method="POST",
                status=200,
                body=dumps(page),
            )
            for page in pages
        ),
    ]


def lemmy_records(at: datetime, hosts: list[str]) -> list[Fetched]:
    linked: list[Any] = [
        {"id": n, "domain": h, "published": "2023-06-01T00:00:00Z", "software": "lemmy"}
        for n, h in enumerate(hosts)
    ]
    linked += [{"id": 0, "domain": 7}, "junk"]
    document = {"federated_instances": {"linked": linked, "allowed": [], "blocked": []}}
    nodeinfo = {
        "version": "2.1",
        "software": {"name": "lemmy", "version": "0.19.5"},
        "protocols": ["activitypub"],
        "usage": {"users": {"total": 800 + len(hosts)}, "localPosts": 4000},
        "openRegistrations": True,
        "metadata": {},
    }
    base = "https://lemmy.example"
    return [
        Fetched(p.NODEINFO, base + "/nodeinfo/2.1", at, status=200, body=dumps(nodeinfo)),
        Fetched(
            p.LEMMY_INSTANCES,
            base + "/api/v3/federated_instances",
            at,
            status=200,
            body=dumps(document),
        ),
    ]


def dumps(document: Any) -> bytes:
    return json.dumps(document, indent=1).encode()


def test_misskey_pages_and_lemmy_lists_reparse_alike(workspace: Workspace) -> None:
    """Written through the Store with what the parser made of the bodies as received;
    reparse reads them back from setfull/setdiff rows and must make the same."""
    workspace.write_config(
        {"collectors": {"fediverse": {"instances": ["misskey.example", "lemmy.example"]}}}
    )
    rng = random.Random(9)
    pool = [f"m{n}.example" for n in range(400)]
    hosts = pool[:237]
    store = Store(open_database(workspace.db_url))
    for day in range(6):
        at = DAY0 + timedelta(days=day)
        hosts = [h for h in hosts if rng.random() > 0.03] + rng.sample(pool, 6)
        rng.shuffle(hosts)
        run_id = store.start_run("fediverse", at)
        for target, records in (
            ("misskey.example", misskey_records(at, hosts, rng)),
            ("lemmy.example", lemmy_records(at, hosts[:150])),
        ):
            parsed = p.parse(target, records, at)
            assert any(o.metric == "peers_total" for o in parsed.observations), target
            store.write_target(run_id, TargetResult("fediverse", target, "ok", at, records, parsed))
        store.finish_run(run_id, at, "ok", {"targets_ok": 2})
    store.engine.dispose()
    assert codecs(workspace).get(codec.SETDIFF)
    before = workspace.export()
    assert len(peers_rows(before)) == 12
    points_gone(workspace)
    result = workspace.cli("reparse")
    assert result.returncode == 0, result.stderr
    assert "reparsed 12 attempts" in result.stdout
    assert workspace.export() == before
