"""Opt-outs a server states in NodeInfo, and peer counts of Misskey and Lemmy lists."""

from __future__ import annotations

from typing import Any

from tests.support.payloads import payload
from tracker.parsers import fediverse as p

from .test_fediverse import NOW, record, values


def nodeinfo(**metadata: Any) -> dict[str, Any]:
    document = payload("fediverse/nodeinfo/mastodon_2.0.json")
    document["metadata"] = metadata
    return document


def test_a_privacy_flag_stores_nothing_not_even_the_software() -> None:
    for flags in ({"private": True}, {"private": "1"}, {"hide_in_statistics": True}):
        parsed = p.parse("x.example", [record(p.NODEINFO, nodeinfo(**flags))], NOW)
        assert parsed.failure is not None and parsed.failure.kind == "opted_out", flags
        assert parsed.observations == [] and parsed.software is None


def test_http_410_on_nodeinfo_is_an_opt_out() -> None:
    for kind in (p.WELLKNOWN, p.NODEINFO):
        parsed = p.parse("x.example", [record(kind, {}, status=410)], NOW)
        assert parsed.failure is not None and parsed.failure.kind == "opted_out"
        assert "410" in parsed.failure.detail


def test_a_public_node_is_measured_as_before() -> None:
    parsed = p.parse("x.example", [record(p.NODEINFO, nodeinfo(private=False))], NOW)
    assert parsed.failure is None and values(parsed.observations)["users_total"] > 0


def misskey_page(hosts: list[str]) -> dict[str, Any]:
    return [{"id": str(i), "host": host} for i, host in enumerate(hosts)]  # type: ignore[return-value]


def test_misskey_pages_and_lemmy_linked_count_distinct_peers() -> None:
    full = [f"s{i}.example" for i in range(100)]
    pages = [
        record(p.MISSKEY_INSTANCES, misskey_page(full)),
        record(p.MISSKEY_INSTANCES, misskey_page(["s0.example", "last.example"])),
    ]
    assert p.count_listed_peers(pages) == 101
    lemmy = {"federated_instances": {"linked": [{"domain": "a.example"}, {"domain": "b.example"}]}}
    assert p.count_listed_peers([record(p.LEMMY_INSTANCES, lemmy)]) == 2


def test_a_peer_list_read_in_part_gives_no_count() -> None:
    full = misskey_page([f"s{i}.example" for i in range(100)])
    cut = [record(p.MISSKEY_INSTANCES, full)]  # paging stopped on a full page
    assert p.count_listed_peers(cut) is None
    failed = [*cut, record(p.MISSKEY_INSTANCES, b"", status=502, error_kind="http_502")]
    assert p.count_listed_peers(failed) is None
    assert p.count_listed_peers([]) is None
