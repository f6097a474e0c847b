"""The payload codecs (payload_codec.py): every stored form reads back to a body the
parsers read alike, peer lists as sets, everything else byte for byte."""

from __future__ import annotations

import json
import os
import random
import zlib
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support import payloads as pl
from tracker.model import Fetched
from tracker.parsers import fediverse as p
from tracker.storage import payload_codec as codec
from tracker.storage.payload_codec import Base, Decoded, encode

AT = datetime(2026, 12, 1, tzinfo=UTC)

JUNK_PEERS: list[Any] = [
    "mastodon.social",
    "mastodon.social",  # a duplicate: the parsers count it once, the crawl counts it
    "MSTDN.JP.",
    " spaced.example ",
    "xn--r8jz45g.example",
    "例え.テスト",
    "\u2028odd.example",
    "back\\slash.example",
    'quo"te.example',
    "192.0.2.1",
    "localhost",
    "",
    42,
    None,
    True,
    1.5,
    {"host": "object.example"},
    ["nested.example"],
]


def dumps(document: Any, **options: Any) -> bytes:
    return json.dumps(document, **options).encode()


def multiset(items: list[Any]) -> Counter[str]:
    return Counter(json.dumps(item, sort_keys=True) for item in items)


def record(kind: str, body: bytes) -> Fetched:
    return Fetched(kind, "https://s.example/x", AT, status=200, body=body)


def roundtrip(body: bytes, kind: str, base: Base | None = None) -> bytes:
    stored = encode(body, kind, base)
    decoded = codec.decode(stored.codec, stored.stored, base.decoded if base else None)
    assert decoded.body == stored.decoded.body
    return decoded.body


def test_a_peer_list_is_stored_as_a_sorted_multiset_that_reads_alike() -> None:
    rng = random.Random(7)
    peers = JUNK_PEERS * 3
    rng.shuffle(peers)
    body = dumps(peers, ensure_ascii=False)
    stored = encode(body, p.PEERS, None)
    assert stored.codec == codec.SETFULL
    read = roundtrip(body, p.PEERS)
    assert multiset(json.loads(read)) == multiset(peers)  # every element, as often
    texts = sorted(json.dumps(item, ensure_ascii=False, separators=(",", ":")) for item in peers)
    assert read == ("[" + ",".join(texts) + "]").encode()  # compact, sorted by element text
    assert p.count_peers(json.loads(read)) == p.count_peers(peers)
    # Canonical: the same list in another order and layout is stored the same way.
    again = dumps(list(reversed(peers)), indent=2)
    assert roundtrip(again, p.PEERS) == read


def test_escapes_and_lone_surrogates_survive() -> None:
    body = b'["a.example","\\ud800lone.example","\\u00e9t\\u00e9.example","\\u0000nul"]'
    read = roundtrip(body, p.PEERS)
    assert sorted(json.loads(read)) == sorted(json.loads(body))


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        (p.PEERS, b'\xef\xbb\xbf["bom.example"]'),  # json.loads(bytes) reads it, so must we
        (p.PEERS, '["utf16.example"]'.encode("utf-16")),
        (p.PEERS, b'["truncated.example", "b.exa'),
        (p.PEERS, b"<!DOCTYPE html><html>peers are off</html>"),
        (p.PEERS, b'{"error": "This method requires an authenticated user"}'),
        (p.PEERS, b""),
        (p.LEMMY_INSTANCES, b'{"federated_instances": null}'),
        (
            p.LEMMY_INSTANCES,
            b'{"federated_instances":{"linked":[]},"x":"\\u0000tracker-set-0\\u0000"}',
        ),
    ],
)
def test_a_body_that_is_no_clean_json_set_is_kept_byte_for_byte(kind: str, body: bytes) -> None:
    stored = encode(body, kind, None)
    assert stored.codec == codec.ZLIB
    assert roundtrip(body, kind) == body
    later = encode(body + b" ", kind, Base("v1", 0, stored.decoded))
    assert later.codec in (codec.ZDELTA, codec.ZLIB)
    assert codec.decode(later.codec, later.stored, stored.decoded).body == body + b" "


def test_nan_and_infinities_read_back_as_the_same_numbers() -> None:
    body = b'["a.example", NaN, 1e999, -1e999, 1.0, 1, -0.0]'
    read = json.loads(roundtrip(body, p.PEERS))
    assert sorted(map(repr, read)) == sorted(map(repr, json.loads(body)))


def test_diffs_chain_and_read_back_as_each_version() -> None:
    rng = random.Random(11)
    names = [f"host{n}.example" for n in range(3000)]
    current = rng.sample(names, 1500) + ["dup.example"] * 3
    base: Base | None = None
    sizes = []
    for version in range(40):
        for _ in range(rng.randint(0, 12)):
            current.remove(rng.choice(current))
        current += rng.sample(names, rng.randint(0, 12))
        if version % 7 == 3:
            current += ["dup.example", 7, None]  # duplicates and junk come and go
        rng.shuffle(current)
        body = dumps(current)
        stored = encode(body, p.PEERS, base)
        decoded = codec.decode(stored.codec, stored.stored, base.decoded if base else None)
        assert multiset(json.loads(decoded.body)) == multiset(current)
        assert decoded.body == stored.decoded.body
        if base is not None and base.depth < codec.MAX_DEPTH:
            assert stored.codec == codec.SETDIFF
            assert stored.base_sha256 == base.sha256
            assert stored.depth == base.depth + 1
            sizes.append(len(stored.stored))
        base = Base(f"v{version}", stored.depth, decoded)
    whole = encode(dumps(current), p.PEERS, None)
    assert max(sizes) * 10 < len(whole.stored)  # a day's churn, not the whole list


def test_the_depth_is_bounded() -> None:
    names = [f"host{n}.example" for n in range(300)]
    first = encode(dumps(names), p.PEERS, None)
    more = dumps([*names, "new.example"])
    at_limit = Base("x", codec.MAX_DEPTH, first.decoded)
    assert encode(more, p.PEERS, at_limit).codec == codec.SETFULL
    below = Base("x", codec.MAX_DEPTH - 1, first.decoded)
    stored = encode(more, p.PEERS, below)
    assert (stored.codec, stored.depth) == (codec.SETDIFF, codec.MAX_DEPTH)


@pytest.mark.parametrize("seed", range(30))
def test_set_changes_apply_to_any_multisets(seed: int) -> None:
    rng = random.Random(seed)
    pool = [f'"{n}"' for n in range(rng.randint(1, 40))]
    old = sorted(rng.choices(pool, k=rng.randint(0, 60)))
    new = sorted(rng.choices(pool, k=rng.randint(0, 60)))
    positions, added = codec.set_changes(old, new)
    assert codec.apply_changes(old, positions, added) == new
    assert positions == sorted(set(positions))
    assert len(positions) + len(new) - len(added) == len(old)


def lemmy(linked: list[dict[str, Any]], *, blocked: bool = True) -> dict[str, Any]:
    document: dict[str, Any] = {
        "federated_instances": {
            "linked": linked,
            "allowed": [{"id": 1, "domain": "friend.example", "published": "2023-06-01T00:00:00Z"}],
        }
    }
    if blocked:
        document["federated_instances"]["blocked"] = []
    return document


def lemmy_instance(n: int, version: str = "0.19.3") -> dict[str, Any]:
    return {
        "id": n,
        "domain": f"lemmy{n}.example",
        "published": "2023-06-01T00:00:00.000000Z",
        "updated": "2024-01-02T03:04:05.000000Z",
        "software": "lemmy",
        "version": version,
    }


def test_lemmy_lists_are_sets_inside_their_document() -> None:
    linked = [lemmy_instance(n) for n in range(200)]
    body = dumps(lemmy(linked))
    first = encode(body, p.LEMMY_INSTANCES, None)
    assert first.codec == codec.SETFULL
    assert len(codec.canonical_set(body, codec.SET_LIKE_KINDS[p.LEMMY_INSTANCES]).arrays) == 3  # type: ignore[union-attr]
    linked[5]["version"] = "0.19.4"
    changed = [*linked[::-1], lemmy_instance(900)]
    body2 = dumps(lemmy(changed))
    base = Base("v1", 0, first.decoded)
    second = encode(body2, p.LEMMY_INSTANCES, base)
    assert second.codec == codec.SETDIFF
    assert len(second.stored) < 200
    read = json.loads(codec.decode(second.codec, second.stored, first.decoded).body)
    assert multiset(read["federated_instances"]["linked"]) == multiset(changed)
    assert read["federated_instances"]["allowed"] == lemmy([])["federated_instances"]["allowed"]
    # A document with another set of lists is stored whole, and reads back.
    body3 = dumps(lemmy(changed, blocked=False))
    third = encode(body3, p.LEMMY_INSTANCES, Base("v2", 1, second.decoded))
    assert third.codec == codec.SETFULL
    assert "blocked" not in json.loads(third.decoded.body)["federated_instances"]


def misskey(n: int, notes: int) -> dict[str, Any]:
    return {
        "id": f"9abc{n:06d}",
        "firstRetrievedAt": "2023-02-01T00:00:00.000Z",
        "host": f"misskey{n}.example",
        "usersCount": 10 + n,
        "notesCount": notes,
        "followingCount": 3,
        "followersCount": 4,
        "isNotResponding": False,
        "isSuspended": False,
        "isBlocked": False,
        "softwareName": "misskey",
        "softwareVersion": "2024.11.0",
        "openRegistrations": True,
        "name": f"Misskey {n}",
        "description": "A Misskey server",
        "maintainerName": None,
        "maintainerEmail": None,
        "iconUrl": None,
        "faviconUrl": None,
        "themeColor": "#86b300",
        "infoUpdatedAt": "2024-12-01T00:00:00.000Z",
        "latestRequestReceivedAt": "2024-12-01T00:00:00.000Z",
    }


def test_a_misskey_page_whose_counts_moved_costs_little() -> None:
    page = [misskey(n, 1000 * n) for n in range(100)]
    first = encode(dumps(page), p.MISSKEY_INSTANCES, None)
    moved = [misskey(n, 1000 * n + (7 if n % 10 == 0 else 0)) for n in range(100)]
    second = encode(dumps(moved), p.MISSKEY_INSTANCES, Base("v1", 0, first.decoded))
    assert second.codec == codec.SETDIFF
    assert len(second.stored) * 10 < len(first.stored)
    read = codec.decode(second.codec, second.stored, first.decoded).body
    assert multiset(json.loads(read)) == multiset(moved)


def test_the_parsers_read_the_same_from_the_stored_form() -> None:
    """parse over a server's records, as received and as read back."""
    rng = random.Random(3)
    peers = [f"peer{n}.example" for n in range(500)] + JUNK_PEERS
    rng.shuffle(peers)
    pages = [[misskey(n, n) for n in range(start, start + 100)] for start in (0, 100)]
    pages.append([misskey(n, n) for n in range(200, 237)] + [misskey(3, 3)])  # a repeat
    lemmy_doc = lemmy([lemmy_instance(n) for n in range(50)] + [{"domain": 5}, "junk"])
    nodeinfo = dumps(
        {
            "version": "2.0",
            "software": {"name": "mastodon", "version": "4.3.2"},
            "protocols": ["activitypub"],
            "usage": {"users": {"total": 1234, "activeMonth": 100}, "localPosts": 99},
            "openRegistrations": True,
        }
    )
    servers = {
        "mastodon": [record(p.NODEINFO, nodeinfo), record(p.PEERS, dumps(peers))],
        "misskey": [
            record(p.NODEINFO, nodeinfo.replace(b"mastodon", b"misskey")),
            *(record(p.MISSKEY_INSTANCES, dumps(page)) for page in pages),
        ],
        "lemmy": [
            record(p.NODEINFO, nodeinfo.replace(b"mastodon", b"lemmy")),
            record(p.LEMMY_INSTANCES, dumps(lemmy_doc)),
        ],
    }
    for name, records in servers.items():
        stored = [
            Fetched(r.kind, r.url, r.fetched_at, status=200, body=roundtrip(r.body or b"", r.kind))
            for r in records
        ]
        assert any(a.body != b.body for a, b in zip(stored, records, strict=True))
        original = p.parse("s.example", records, AT)
        again = p.parse("s.example", stored, AT)
        assert again == original, name
        assert any(o.metric == "peers_total" for o in original.observations), name


def test_documents_are_stored_against_the_previous_version_byte_for_byte() -> None:
    first = dumps(pl.mastodon_nodeinfo(1000, 300, 600, 50_000))
    stored = encode(first, p.NODEINFO, None)
    assert stored.codec == codec.ZLIB
    second = dumps(pl.mastodon_nodeinfo(1017, 301, 600, 50_400))
    delta = encode(second, p.NODEINFO, Base("v1", 0, stored.decoded))
    assert delta.codec == codec.ZDELTA
    assert len(delta.stored) < 30
    assert codec.decode(delta.codec, delta.stored, stored.decoded).body == second


@pytest.mark.parametrize(
    ("base_size", "size"),
    [
        (0, 100),
        (100, 0),
        (0, 0),
        (40_000, 40_000),
        (200_000, 210_000),
        (5_000, 90_000),
        (90_000, 5_000),
    ],
)
def test_zdelta_reads_back_any_sizes(base_size: int, size: int) -> None:
    rng = random.Random(base_size + size)
    base = bytes(rng.getrandbits(8) for _ in range(base_size))
    body = bytearray(base[:size]) + os.urandom(max(0, size - base_size))
    for _ in range(20):
        if body:
            body[rng.randrange(len(body))] ^= 0x55
    packed = codec.encode_zdelta(base, bytes(body))
    assert codec.decode_zdelta(base, packed) == bytes(body)


def test_a_long_document_is_compressed_against_the_same_region() -> None:
    rng = random.Random(5)
    hosts = [
        {
            "hostname": f"pds{n}.example",
            "accountCount": rng.randint(0, 99),
            "seq": n,
            "status": "active",
        }
        for n in range(1000)
    ]
    first = dumps({"cursor": "1000", "hosts": hosts})
    for host in rng.sample(hosts, 10):
        host["accountCount"] += 1
    second = dumps({"cursor": "1000", "hosts": hosts})
    assert len(first) > 2 * codec.WINDOW
    delta = encode(second, "listHosts", Base("v1", 0, Decoded(raw=first)))
    assert delta.codec == codec.ZDELTA
    assert len(delta.stored) * 3 < len(zlib.compress(second, 9))
    assert codec.decode(delta.codec, delta.stored, Decoded(raw=first)).body == second


def test_a_delta_is_kept_only_when_clearly_smaller() -> None:
    base = Base("v1", 0, Decoded(raw=os.urandom(3000)))
    body = os.urandom(5000)  # nothing in common: a delta would save a few header bytes
    assert encode(body, p.NODEINFO, base).codec == codec.ZLIB
    names = Base("v1", 0, encode(dumps(["a.example"]), p.PEERS, None).decoded)
    other = encode(dumps([f"{n}.example" for n in range(50)]), p.PEERS, names)
    assert other.codec == codec.SETFULL  # a diff adding everything is no smaller


def test_an_element_spelling_a_sentinel_is_an_element() -> None:
    linked = [{"domain": "\u0000tracker-set-1\u0000"}, {"domain": "a.example"}]
    allowed = ["\u0000tracker-set-2\u0000"]
    document = {"federated_instances": {"linked": linked, "allowed": allowed, "blocked": []}}
    body = dumps(document)
    read = json.loads(roundtrip(body, p.LEMMY_INSTANCES))
    assert multiset(read["federated_instances"]["linked"]) == multiset(linked)
    assert read["federated_instances"]["allowed"] == ["\u0000tracker-set-2\u0000"]
    assert read["federated_instances"]["blocked"] == []


def test_the_comparison_mode_writes_zlib_as_before() -> None:
    stored = encode(dumps(["a.example"]), p.PEERS, None, deltas=False)
    assert (stored.codec, stored.base_sha256, stored.depth) == (codec.ZLIB, None, 0)
    assert zlib.decompress(stored.stored) == dumps(["a.example"])


def test_a_delta_without_its_base_or_an_unknown_codec_is_an_error() -> None:
    with pytest.raises(ValueError, match="needs its base"):
        codec.decode(codec.ZDELTA, b"\x01", None)
    with pytest.raises(ValueError, match="not stored as a set"):
        codec.decode(codec.SETDIFF, b"\x00", Decoded(raw=b"[]"))
    with pytest.raises(ValueError, match="unknown payload codec"):
        codec.decode("zstd", b"", Decoded(raw=b""))
