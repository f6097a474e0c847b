"""Exclusions, registrable domains, spam clusters and NodeInfo privacy flags, as pure functions."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from tests.support.payloads import payload
from tracker.crawl import policy
from tracker.crawl.policy import (
    ClusterWatch,
    ExclusionError,
    Exclusions,
    cluster_members_to_count,
    exclusion_entry,
    registrable_domain,
)
from tracker.parsers.fediverse import privacy_opt_out

# ---- exclusions


def test_suffix_match_on_a_label_boundary() -> None:
    rules = Exclusions.from_config(["example.com"], None)
    assert rules.matches("example.com")
    assert rules.matches("a.example.com")
    assert rules.matches("a.b.example.com")
    assert not rules.matches("badexample.com")
    assert not rules.matches("example.com.au")
    assert not rules.matches("com")
    assert not rules.matches("example.org")


def test_entries_are_normalised_like_hosts() -> None:
    rules = Exclusions.from_config(["  Example.COM. ", "*.spam.example", ".dot.example"], None)
    assert rules.entries == {"example.com", "spam.example", "dot.example"}
    assert rules.matches("x.spam.example")
    assert rules.matches("spam.example")
    assert rules.matches("x.dot.example")
    rules = Exclusions.from_config(["Bücher.example"], None)
    assert rules.matches("shop.xn--bcher-kva.example")


def test_hosts_are_compared_case_and_dot_insensitive() -> None:
    rules = Exclusions.from_config(["example.com"], None)
    assert rules.matches("A.Example.COM.")


def test_host_keys_with_ports_and_addresses_match_exactly() -> None:
    rules = Exclusions.from_config(["127.0.0.1:8081"], None)
    assert rules.matches("127.0.0.1:8081")
    assert not rules.matches("127.0.0.1:8082")
    assert not rules.matches("127.0.0.1")
    everything_there = Exclusions.from_config(["127.0.0.1"], None)
    assert everything_there.matches("127.0.0.1:8082")
    assert everything_there.matches("127.0.0.1")
    assert not everything_there.matches("27.0.0.1")
    assert not Exclusions.from_config(["0.0.1"], None).matches("127.0.0.1:80")
    assert Exclusions.from_config(["[::1]:80"], None).matches("[::1]:80")


def test_a_top_level_domain_excludes_everything_under_it() -> None:
    rules = Exclusions.from_config(["test"], None)
    assert rules.matches("a.test")
    assert not rules.matches("a.testing")


def test_nothing_excluded_by_default() -> None:
    rules = Exclusions.from_config([], None)
    assert not rules.matches("mastodon.social")
    assert len(rules) == 0


def test_exclude_file(tmp_path: Path) -> None:
    listing = tmp_path / "do-not-crawl.txt"
    listing.write_text(
        "# published do-not-crawl list\n"
        "\n"
        "private.example\n"
        "   Other.Example   # trailing comment\n"
        "\t\n"
        "127.0.0.1:9000\n",
        encoding="utf-8",
    )
    rules = Exclusions.from_config(["example.com"], listing)
    assert rules.entries == {"example.com", "private.example", "other.example", "127.0.0.1:9000"}
    assert rules.matches("a.private.example")
    assert rules.matches("127.0.0.1:9000")


@pytest.mark.parametrize(
    "bad", ["bad name.example", "https://x.example/", "a..example", "x.example:http", "u@x.example"]
)
def test_exclude_file_errors_name_file_and_line(tmp_path: Path, bad: str) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text(f"# header\ngood.example\n{bad}\n", encoding="utf-8")
    with pytest.raises(ExclusionError, match=rf"^{listing}:3: ") as caught:
        Exclusions.from_config([], listing)
    assert isinstance(caught.value, ValueError)


def test_exclude_config_errors_name_the_item() -> None:
    with pytest.raises(ExclusionError, match=r"exclude item 1: "):
        Exclusions.from_config(["fine.example", "not valid"], None)
    with pytest.raises(ExclusionError, match=r"exclude item 0: "):
        Exclusions.from_config([""], None)
    with pytest.raises(ExclusionError, match=r"exclude item 0: .*port"):
        Exclusions.from_config(["x.example:99999"], None)


def test_missing_exclude_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(ExclusionError, match="cannot read"):
        Exclusions.from_config([], missing)


def test_exclusion_entry() -> None:
    assert exclusion_entry("Example.COM.") == "example.com"
    assert exclusion_entry("::1") == "[::1]"
    assert exclusion_entry("[::1]:8080") == "[::1]:8080"
    assert exclusion_entry("127.0.0.1:08080") == "127.0.0.1:8080"


# ---- registrable domains


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("mastodon.social", "mastodon.social"),
        ("a.b.mastodon.social", "mastodon.social"),
        ("example.co.uk", "example.co.uk"),
        ("x.y.example.co.uk", "example.co.uk"),
        ("alice.github.io", "alice.github.io"),  # private section: separate owners
        ("www.alice.github.io", "alice.github.io"),
        ("misskey.io", "misskey.io"),
        ("a.misskey.io", "misskey.io"),
        ("xn--r8jz45g.xn--zckzah", "xn--r8jz45g.xn--zckzah"),
        ("sub.xn--r8jz45g.xn--zckzah", "xn--r8jz45g.xn--zckzah"),
        ("co.uk", "co.uk"),  # itself a public suffix
        ("social", "social"),
        ("a.b.unknowntld", "b.unknowntld"),  # an unknown TLD counts as a public suffix
        ("A.Example.COM.", "example.com"),
        ("127.0.0.1:8080", "127.0.0.1:8080"),  # the loopback test servers
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]:8080", "[::1]:8080"),
        ("a.example.com:8443", "a.example.com:8443"),
    ],
)
def test_registrable_domain(host: str, expected: str) -> None:
    assert registrable_domain(host) == expected


def test_suffix_list_is_bundled_not_downloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load the list cold with the network cut off: it comes from the installed wheel."""

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the Public Suffix List must not touch the network")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    policy._suffix_list.cache_clear()
    try:
        assert registrable_domain("a.b.example.co.uk") == "example.co.uk"
    finally:
        policy._suffix_list.cache_clear()


# ---- spam clusters


def test_cluster_flagged_only_past_the_threshold() -> None:
    watch = ClusterWatch(3)
    assert watch.add(["a.spam.example", "b.spam.example", "c.spam.example"]) == {}
    assert watch.flagged == frozenset()
    flag = watch.add(["d.spam.example"])
    assert flag == {
        "spam.example": ["a.spam.example", "b.spam.example", "c.spam.example", "d.spam.example"]
    }
    assert watch.add(["e.spam.example"]) == {"spam.example": ["e.spam.example"]}
    assert watch.flagged == {"spam.example"}
    assert watch.cluster_of("z.spam.example") == "spam.example"
    assert watch.cluster_of("mastodon.social") is None


def test_cluster_counts_each_host_once() -> None:
    watch = ClusterWatch(2)
    assert watch.add(["a.spam.example", "a.spam.example", "b.spam.example"]) == {}
    assert watch.add(["b.spam.example", "a.spam.example"]) == {}
    assert watch.add(["c.spam.example"]) == {
        "spam.example": ["a.spam.example", "b.spam.example", "c.spam.example"]
    }
    assert watch.add(["c.spam.example"]) == {}  # already flagged, not returned again


def test_cluster_domains_are_counted_apart() -> None:
    watch = ClusterWatch(2)
    hosts = [f"u{i}.github.io" for i in range(10)]  # separate owners under a PSL suffix
    hosts += ["a.one.example", "b.one.example", "a.two.example", "b.two.example"]
    assert watch.add(hosts) == {}
    assert watch.add([f"127.0.0.1:{port}" for port in range(8000, 8010)]) == {}


def test_cluster_threshold_zero_and_negative() -> None:
    assert ClusterWatch(0).add(["a.example"]) == {"a.example": ["a.example"]}
    with pytest.raises(ValueError, match="negative"):
        ClusterWatch(-1)


def test_cluster_member_counts_once_its_numbers_are_its_own() -> None:
    same = ("misskey", 1, 0)
    members = {
        "a.spam.example": same,
        "b.spam.example": same,
        "c.spam.example": same,
        "real.spam.example": ("mastodon", 1200, 45000),
        "twin1.spam.example": ("mastodon", 5, 7),
        "twin2.spam.example": ("mastodon", 5, 7),
        "quiet.spam.example": None,
    }
    assert cluster_members_to_count(members) == {"real.spam.example"}


def test_cluster_members_edge_cases() -> None:
    assert cluster_members_to_count({}) == set()
    assert cluster_members_to_count({"a.x.example": None}) == set()
    assert cluster_members_to_count({"a.x.example": ("gotosocial", None, None)}) == {"a.x.example"}
    none_numbers = {"a.x.example": ("misskey", None, None), "b.x.example": ("misskey", None, None)}
    assert cluster_members_to_count(none_numbers) == set()
    # the software is part of the signature
    assert cluster_members_to_count(
        {"a.x.example": ("misskey", 1, 1), "b.x.example": ("sharkey", 1, 1)}
    ) == {"a.x.example", "b.x.example"}


# ---- NodeInfo privacy flags


def nodeinfo(**metadata: Any) -> dict[str, Any]:
    document: dict[str, Any] = payload("fediverse/nodeinfo/mastodon_2.0.json")
    document["metadata"] = metadata
    return document


@pytest.mark.parametrize("value", [True, 1, "1", "true", "True"])
def test_private_flag(value: Any) -> None:
    assert privacy_opt_out(nodeinfo(private=value)) == "NodeInfo metadata.private"


@pytest.mark.parametrize("value", [True, 1, "1"])
def test_hide_in_statistics_flag(value: Any) -> None:
    document = nodeinfo(hide_in_statistics=value, nodeName="hub")
    assert privacy_opt_out(document) == "NodeInfo metadata.hide_in_statistics"


@pytest.mark.parametrize("value", [False, 0, "0", "false", "", None, [], {}, "no"])
def test_flags_off(value: Any) -> None:
    assert privacy_opt_out(nodeinfo(private=value, hide_in_statistics=value)) is None


@pytest.mark.parametrize(
    "name",
    [
        "mastodon_2.0.json",
        "misskey_2.1.json",
        "lemmy_2.1.json",
        "pleroma_2.0.json",
        "gotosocial_2.1.json",
        "pixelfed_2.0.json",
        "lemmy_2.0_legacy_0.18.json",
    ],
)
def test_real_nodeinfo_documents_are_not_opted_out(name: str) -> None:
    assert privacy_opt_out(payload(f"fediverse/nodeinfo/{name}")) is None


@pytest.mark.parametrize("document", [None, [], "x", {}, {"metadata": None}, {"metadata": []}])
def test_odd_documents_are_not_opted_out(document: Any) -> None:
    assert privacy_opt_out(document) is None
