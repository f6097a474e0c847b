"""Peer-list entries to host keys, and the three peer-list shapes, as pure functions.

No name here is resolved or fetched: every host is an input string. Addresses
appear only as junk the normaliser must refuse (or as the allow-listed loopback).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.payloads import payload
from tracker.model import Fetched, PayloadError
from tracker.parsers import fediverse as fp
from tracker.parsers.peers import (
    Junk,
    PeerSet,
    clean_peers,
    normalise_peer,
    read_lemmy_instances,
    read_mastodon_peers,
    read_misskey_instances,
    read_peer_records,
)
from tracker.targets import TargetError, normalise_host

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fediverse" / "peers"
LOOPBACK = frozenset({"127.0.0.1"})
NOW = datetime(2025, 2, 3, 12, 0, tzinfo=UTC)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mastodon.social", "mastodon.social"),
        ("  Mastodon.Social  ", "mastodon.social"),
        ("MSTDN.JP.", "mstdn.jp"),
        ("https://fosstodon.org/", "fosstodon.org"),
        ("http://fosstodon.org/about?x=1#top", "fosstodon.org"),
        ("//fosstodon.org/path", "fosstodon.org"),
        ("fosstodon.org/path", "fosstodon.org"),
        ("fosstodon.org?x", "fosstodon.org"),
        ("user@fosstodon.org", "fosstodon.org"),
        ("@user@fosstodon.org", "fosstodon.org"),
        ("https://user:secret@fosstodon.org:443/", "fosstodon.org"),
        ("fosstodon.org:8443", "fosstodon.org"),
        ("fosstodon.org:", "fosstodon.org"),
        ("Bücher.Example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
        ("mastodon。social", "mastodon.social"),  # ideographic full stop (UTS 46)
        ("ＭＡＳＴＯＤＯＮ.social", "mastodon.social"),  # full-width letters
        ("a-b.c-d.example", "a-b.c-d.example"),
        ("1e100.example", "1e100.example"),
        ("0xdead.example", "0xdead.example"),  # hex-looking label, but a name
    ],
)
def test_normalise_peer_keeps_names(text: str, expected: str) -> None:
    assert normalise_peer(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # IP literals in every spelling the resolver reads without DNS
        ("192.0.2.1", Junk.IP_LITERAL),
        ("127.0.0.3", Junk.IP_LITERAL),
        ("127.0.0.2:8080", Junk.IP_LITERAL),
        ("10.0.0.1.", Junk.IP_LITERAL),
        ("127.1", Junk.IP_LITERAL),
        ("2130706433", Junk.IP_LITERAL),
        ("0x7f.1", Junk.IP_LITERAL),
        ("0177.0.0.1", Junk.IP_LITERAL),
        ("::1", Junk.IP_LITERAL),
        ("[::1]", Junk.IP_LITERAL),
        ("[::1]:8080", Junk.IP_LITERAL),
        ("2001:db8::1", Junk.IP_LITERAL),
        ("[2001:db8::1]:443", Junk.IP_LITERAL),
        ("fe80::1%eth0", Junk.IP_LITERAL),
        ("::ffff:127.0.0.1", Junk.IP_LITERAL),
        ("https://192.0.2.1/", Junk.IP_LITERAL),
        ("user@192.0.2.1", Junk.IP_LITERAL),
        ("１２７.０.０.１", Junk.IP_LITERAL),  # full-width digits map to an address
        # this machine
        ("localhost", Junk.LOCAL_NAME),
        ("LOCALHOST.", Junk.LOCAL_NAME),
        ("localhost:3000", Junk.LOCAL_NAME),
        ("a.localhost", Junk.LOCAL_NAME),
        ("http://evil.localhost/", Junk.LOCAL_NAME),
        ("ｌｏｃａｌｈｏｓｔ", Junk.LOCAL_NAME),
        # single labels
        ("mastodon", Junk.SINGLE_LABEL),
        ("com.", Junk.SINGLE_LABEL),
        ("https://intranet/", Junk.SINGLE_LABEL),
        # not names
        ("", Junk.INVALID),
        ("   ", Junk.INVALID),
        (".", Junk.INVALID),
        ("a..", Junk.INVALID),
        ("foo..bar.example", Junk.INVALID),
        (".foo.example", Junk.INVALID),
        ("*.foo.example", Junk.INVALID),
        ("foo bar.example", Junk.INVALID),
        ("foo_bar.example", Junk.INVALID),
        ("-foo.example", Junk.INVALID),
        ("foo-.example", Junk.INVALID),
        ("foo.example:99999", Junk.INVALID),
        ("foo.example:0", Junk.INVALID),
        ("foo.example:http", Junk.INVALID),
        ("[::1", Junk.INVALID),
        ("[foo.example]", Junk.INVALID),
        ("[::1]x", Junk.INVALID),
        ("https://", Junk.INVALID),
        ("foo.123", Junk.INVALID),  # an all-digit top label
        ("a" * 64 + ".example", Junk.INVALID),  # one label over 63
        ("<script>.example", Junk.INVALID),
        # too long
        (".".join(["a" * 63] * 4) + ".example", Junk.TOO_LONG),
        ("x" * 3000, Junk.TOO_LONG),
        # not text
        (None, Junk.NOT_TEXT),
        (42, Junk.NOT_TEXT),
        (True, Junk.NOT_TEXT),
        ({"host": "x.example"}, Junk.NOT_TEXT),
        (["x.example"], Junk.NOT_TEXT),
    ],
)
def test_normalise_peer_junk(text: object, reason: Junk) -> None:
    assert normalise_peer(text, LOOPBACK) is reason


def test_unicode_name_too_long_only_in_ascii() -> None:
    label = "ü" * 10  # 10 characters, 16 once punycoded
    text = ".".join([label] * 20) + ".example"
    assert len(text) <= 253
    assert normalise_peer(text) is Junk.TOO_LONG


def test_fast_path_agrees_with_normalise_host() -> None:
    rng = random.Random(11)
    alphabet = "abcxyzAZ09-"
    names = ["xn--bcher-kva.example", "ab--cd.example", "xn--a.example", "a-.b.example"]
    for _ in range(3000):
        labels = ["".join(rng.choices(alphabet, k=rng.randint(1, 6))) for _ in range(3)]
        names.append(".".join(labels))
    for text in names:
        result = normalise_peer(text)
        try:
            expected: str | None = normalise_host(text)
        except TargetError:
            expected = None
        if isinstance(result, str):
            assert result == expected, text
        elif result is Junk.INVALID:
            assert expected is None or expected.split(".")[-1].isdigit(), text


def test_longest_name_is_kept() -> None:
    name = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 58]) + ".ex"
    assert len(name) == 253
    assert normalise_peer(name) == name
    assert normalise_peer(name + "x") is Junk.TOO_LONG


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8080", "127.0.0.1:8080"),
        ("http://127.0.0.1:8080/", "127.0.0.1:8080"),
        ("127.0.0.1:08080", "127.0.0.1:8080"),
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
    ],
)
def test_allowed_host_keeps_its_port(text: str, expected: str) -> None:
    assert normalise_peer(text, LOOPBACK) == expected


def test_loopback_is_junk_unless_allowed() -> None:
    assert normalise_peer("127.0.0.1:8080") is Junk.IP_LITERAL
    assert normalise_peer("127.0.0.1") is Junk.IP_LITERAL


def test_allow_list_does_not_widen_to_other_spellings() -> None:
    # 127.1 and 2130706433 reach the same address, but only 127.0.0.1 is listed
    for text in ("127.1:8080", "2130706433:8080", "127.0.0.2:8080", "[::1]:8080"):
        assert normalise_peer(text, LOOPBACK) is Junk.IP_LITERAL
    assert normalise_peer("localhost:8080", LOOPBACK) is Junk.LOCAL_NAME


def test_allowed_ipv6_and_names() -> None:
    allow = frozenset({"::1", "intranet", "box.lan"})
    assert normalise_peer("[::1]:8080", allow) == "[::1]:8080"
    assert normalise_peer("::1", allow) == "[::1]"
    assert normalise_peer("intranet:81", allow) == "intranet:81"
    assert normalise_peer("BOX.lan.", allow) == "box.lan"
    assert normalise_peer("other.lan:81", allow) == "other.lan"  # not listed: port dropped


def test_clean_peers_counts_junk_and_duplicates() -> None:
    raw = [
        "mastodon.social",
        "Mastodon.Social",
        "https://mastodon.social/",
        "fosstodon.org",
        "127.0.0.1:8080",
        "127.0.0.2:8080",
        "localhost",
        "[::1]",
        "mastodon",
        "bad name.example",
        None,
        7,
        "",
    ]
    peers = clean_peers(raw, LOOPBACK)
    assert peers.hosts == {"mastodon.social", "fosstodon.org", "127.0.0.1:8080"}
    assert peers.duplicates == 2
    assert dict(peers.junk) == {
        "ip_literal": 2,
        "local_name": 1,
        "single_label": 1,
        "invalid": 2,
        "not_text": 2,
    }
    assert peers.dropped == 8
    assert len(peers.hosts) + peers.duplicates + peers.dropped == len(raw)


def test_clean_peers_empty() -> None:
    assert clean_peers([]) == PeerSet()


def test_mastodon_peers_payload() -> None:
    document = payload("fediverse/mastodon/instance_peers.json")
    raw = read_mastodon_peers(document)
    assert raw == document
    peers = clean_peers(raw)
    assert peers.hosts == {h.lower() for h in document}
    assert not peers.junk


@pytest.mark.parametrize("document", [{}, {"error": "x"}, "peers", None, 3])
def test_mastodon_peers_bad_shape(document: Any) -> None:
    with pytest.raises(PayloadError) as caught:
        read_mastodon_peers(document)
    assert caught.value.kind == "bad_shape"


def test_misskey_instances_fixture() -> None:
    document = fixture("misskey_federation_instances.json")
    raw = read_misskey_instances(document)
    assert raw == ["social.example", "xn--r8jz45g.example", "lemmy.example"]
    assert len(raw) == len(document)  # one entry per object: the page length
    assert clean_peers(raw).hosts == set(raw)


def test_misskey_instances_keep_page_length_with_broken_items() -> None:
    document = [{"host": "a.example"}, {"id": "x"}, "b.example", None, {"host": 5}]
    raw = read_misskey_instances(document)
    assert len(raw) == 5
    peers = clean_peers(raw)
    assert peers.hosts == {"a.example"}
    assert peers.junk == {"not_text": 4}


def test_misskey_error_envelope_is_bad_shape() -> None:
    error = payload("fediverse/misskey/error_404_no_such_endpoint.json")
    with pytest.raises(PayloadError) as caught:
        read_misskey_instances(error)
    assert caught.value.kind == "bad_shape"


def test_lemmy_instances_fixture_reads_linked_only() -> None:
    document = fixture("lemmy_federated_instances.json")
    raw = read_lemmy_instances(document)
    assert raw == ["lemmy.example", "social.example", "kbin.example", "xn--r8jz45g.example"]
    assert "blocked.example" not in clean_peers(raw).hosts


def test_lemmy_federation_disabled() -> None:
    assert read_lemmy_instances(fixture("lemmy_federated_instances_disabled.json")) == []
    assert read_lemmy_instances({"federated_instances": None}) == []


@pytest.mark.parametrize(
    "document",
    [
        [],
        "x",
        None,
        {"federated_instances": []},
        {"federated_instances": {"allowed": []}},
        {"federated_instances": {"linked": {"domain": "a.example"}}},
    ],
)
def test_lemmy_bad_shape(document: Any) -> None:
    with pytest.raises(PayloadError) as caught:
        read_lemmy_instances(document)
    assert caught.value.kind == "bad_shape"


def test_lemmy_items_without_domain_are_not_text() -> None:
    document = {
        "federated_instances": {"linked": [{"id": 1}, "x.example", {"domain": "y.example"}]}
    }
    peers = clean_peers(read_lemmy_instances(document))
    assert peers.hosts == {"y.example"}
    assert peers.junk == {"not_text": 2}


def record(kind: str, body: Any, status: int = 200) -> Fetched:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Fetched(kind=kind, url=f"https://x/{kind}", fetched_at=NOW, status=status, body=raw)


def test_read_peer_records_joins_every_list_and_page() -> None:
    records = [
        record(fp.NODEINFO, {"software": {"name": "misskey"}}),
        record(fp.MISSKEY_INSTANCES, [{"host": "a.example"}, {"host": "b.example"}]),
        record(fp.MISSKEY_INSTANCES, [{"host": "c.example"}]),
        record(fp.PEERS, ["d.example"]),
        record(fp.LEMMY_INSTANCES, fixture("lemmy_federated_instances.json")),
    ]
    raw = read_peer_records(records)
    assert raw[:4] == ["a.example", "b.example", "c.example", "d.example"]
    assert "kbin.example" in raw


def test_read_peer_records_skips_failed_and_broken_pages() -> None:
    records = [
        record(fp.PEERS, b"", status=404),
        record(fp.MISSKEY_INSTANCES, {"error": {"code": "RATE_LIMIT_EXCEEDED"}}),
        record(fp.MISSKEY_INSTANCES, b"<html>"),
        record(fp.LEMMY_INSTANCES, {"federated_instances": {"linked": [{"domain": "e.example"}]}}),
    ]
    assert read_peer_records(records) == ["e.example"]
    assert read_peer_records([]) == []
