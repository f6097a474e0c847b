"""The simulated fediverse graph (tests/support/graph.py) keeps its own promises.

The crawl's end-to-end test and bench/crawl.py compare what `tracker crawl` found
with `Graph.reachable()` and `Graph.measurable()`; these tests check those sets
from the definitions, and once over HTTP with a small reference crawler written
here (not the tracker's code), so a wrong expectation cannot hide a wrong crawler.
"""

from __future__ import annotations

import ipaddress
import json
import re
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.robotparser import RobotFileParser

import pytest

from tests.support.graph import (
    BEHAVIOURS,
    MISSKEY_PAGE,
    PEERS_PATH,
    Graph,
    make_graph,
    serve_graph_in_thread,
)
from tracker.targets import TargetError, normalise_host

PLAIN = re.compile(r"^127\.0\.0\.1:(\d+)$")


@pytest.fixture(scope="module")
def graph() -> Graph:
    return make_graph(400, 7)


def test_the_same_seed_builds_the_same_graph() -> None:
    assert make_graph(300, 5) == make_graph(300, 5)
    assert make_graph(300, 5) != make_graph(300, 6)


def test_a_port_allocator_gets_the_same_graph_under_other_names() -> None:
    fixed = make_graph(200, 3)
    asked: list[tuple[int, bool]] = []

    def allocate(index: int, listening: bool) -> int:
        asked.append((index, listening))
        return 40000 + 2 * index

    renamed = make_graph(200, 3, ports=allocate)
    assert [index for index, _ in asked] == list(range(200))
    assert [listening for _, listening in asked] == [s.listening for s in fixed.servers]
    for before, after in zip(fixed.servers, renamed.servers, strict=True):
        assert (before.software, before.behaviour, before.role, before.users) == (
            after.software,
            after.behaviour,
            after.role,
            after.users,
        )
        old_to_index = {s.name: s.index for s in fixed.servers}
        new_to_index = {s.name: s.index for s in renamed.servers}
        assert [old_to_index[n] for n in before.neighbours] == [
            new_to_index[n] for n in after.neighbours
        ]


def test_every_kind_of_server_is_there(graph: Graph) -> None:
    kinds = graph.kinds()
    assert set(BEHAVIOURS) <= set(kinds)
    assert kinds["island"] >= 1 and kinds["shadow"] >= 1
    bad = sum(kinds[k] for k in ("dead", "hang", "error", "garbage", "drip"))
    assert bad == pytest.approx(0.1 * len(graph), abs=2)
    software = Counter(server.software for server in graph.servers)
    assert {"mastodon", "misskey", "lemmy", "pleroma", "akkoma", "gotosocial"} <= set(software)
    assert software.most_common(1)[0][0] == "mastodon"
    assert all(name.startswith("127.0.0.1:") for name in graph.names)
    assert all(server.port < 32768 for server in graph.servers)


def test_peer_lists_are_about_twenty_entries_with_junk_and_duplicates(graph: Graph) -> None:
    listing = [s for s in graph.servers if s.peers and s.software != "misskey"]
    sizes = sorted(len(s.peers) for s in listing)
    assert 15 <= sizes[len(sizes) // 2] <= 25
    assert all(s.junk for s in listing)
    assert any(len(s.peers) > len(s.neighbours) + len(s.junk) for s in listing)  # duplicates
    hub = graph[graph.seeds[1]]
    assert hub.software == "misskey" and len(hub.peers) > MISSKEY_PAGE  # paged


def test_reachable_is_everything_but_islands_and_shadows(graph: Graph) -> None:
    reachable = graph.reachable()
    assert set(graph.seeds) <= reachable
    assert not reachable & graph.islands
    assert not reachable & graph.shadows
    assert reachable == graph.names - graph.islands - graph.shadows
    assert graph.crawl_order()[: len(graph.seeds)] == graph.seeds


def test_nobody_names_an_island_and_only_opt_outs_name_a_shadow(graph: Graph) -> None:
    island_ports = {graph[name].port for name in graph.islands}
    shadow_ports = {graph[name].port for name in graph.shadows}
    for server in graph.servers:
        named = {int(p) for e in server.peers if isinstance(e, str) for p in _ports(e)}
        assert not named & island_ports, server.name
        if named & shadow_ports:
            assert not server.follows, server.name


def test_measurable_servers_answer_everything_a_crawler_needs(graph: Graph) -> None:
    measurable = graph.measurable()
    assert measurable <= graph.reachable()
    assert {graph[name].behaviour for name in measurable} == {"ok", "peers_off"}
    assert len(measurable) > 0.75 * len(graph)


def test_junk_is_never_a_server_and_never_needs_dns(graph: Graph) -> None:
    servers = {s.port for s in graph.servers}
    probes = set(graph.deny_ports.values())
    for server in graph.servers:
        for entry in server.peers:
            if not isinstance(entry, str):
                assert entry in server.junk
                continue
            host, port = _host_port(entry)
            if host.rstrip(".") == "127.0.0.1" and port in servers:
                assert entry not in server.junk
                assert f"127.0.0.1:{port}" in server.neighbours  # plain spelling listed too
                continue
            assert entry in server.junk, entry
            assert _needs_no_dns(host), entry
            if port is not None and host not in ("nodots",):
                assert port in probes, entry  # a deny spelling aims at a probe


def test_answers_come_in_each_softwares_shape(graph: Graph) -> None:
    mastodon, misskey, lemmy = (graph[name] for name in graph.seeds)
    peers = json.loads(mastodon.answer("GET", "/api/v1/instance/peers").body)
    assert peers == list(mastodon.peers)
    pages, offset = [], 0
    while True:
        body = json.dumps({"limit": MISSKEY_PAGE, "offset": offset}).encode()
        page = json.loads(misskey.answer("POST", "/api/federation/instances", body).body)
        pages += page
        if len(page) < MISSKEY_PAGE:
            break
        offset += MISSKEY_PAGE
    assert [item["host"] for item in pages] == list(misskey.peers)
    document = json.loads(lemmy.answer("GET", "/api/v3/federated_instances").body)
    assert set(document["federated_instances"]) == {"linked", "allowed", "blocked"}
    assert [item["domain"] for item in document["federated_instances"]["linked"]] == list(
        lemmy.peers
    )
    nodeinfo = json.loads(lemmy.answer("GET", "/nodeinfo/2.1").body)
    assert nodeinfo["software"]["name"] == "lemmy"
    assert nodeinfo["usage"]["users"]["total"] == lemmy.users


def test_opt_outs_and_hostile_servers_answer_as_defined(graph: Graph) -> None:
    by_kind = {server.behaviour: server for server in graph.servers}
    assert by_kind["gone"].answer("GET", "/.well-known/nodeinfo").status == 410
    gone_document = by_kind["gone_document"]
    assert gone_document.answer("GET", gone_document.nodeinfo_paths()[0]).status == 410
    private = by_kind["private"]
    metadata = json.loads(private.answer("GET", private.nodeinfo_paths()[0]).body)["metadata"]
    assert metadata.get("private") is True or metadata.get("hide_in_statistics") is True
    robots = [s for s in graph.servers if s.behaviour == "robots"]
    assert {s.robots for s in robots} == {"disallow_all", "disallow_us", "disallow_api"}
    off = by_kind["peers_off"]
    assert off.answer(*PEERS_PATH[off.peer_api or "mastodon"]).status == 404
    assert by_kind["hang"].answer("GET", "/robots.txt").hang
    assert by_kind["error"].answer("GET", "/robots.txt").status >= 500
    assert by_kind["drip"].answer("GET", "/robots.txt").drip
    with pytest.raises(ValueError):
        json.loads(by_kind["garbage"].answer("GET", "/.well-known/nodeinfo").body)


def test_a_reference_crawl_of_the_served_graph_finds_the_reachable_set() -> None:
    with serve_graph_in_thread(count=120, seed=3, drip=1.0) as served:
        graph = served.graph
        found, measured = _reference_crawl(graph)
        assert found == graph.reachable()
        assert measured == graph.measurable()
        assert served.probe_connections() == {}
        assert not served.contacted() & (graph.islands | graph.shadows)


# --- helpers ------------------------------------------------------------------------------


def _ports(entry: str) -> list[str]:
    return re.findall(r"127\.0\.0\.1\.?:(\d+)", entry)


def _host_port(entry: str) -> tuple[str, int | None]:
    """An independent, rough reading of a peer entry's host and port."""
    text = entry.strip()
    text = re.sub(r"^[A-Za-z]+://", "", text)
    text = re.split(r"[/?#]", text, maxsplit=1)[0].rpartition("@")[2]
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    return host.lower(), int(port) if port.isdigit() else None


def _needs_no_dns(host: str) -> bool:
    """Loopback or unspecified IP, IPv4 shorthand, localhost, or no valid DNS name."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return address.is_loopback or address.is_unspecified
    name = host.rstrip(".")
    if re.fullmatch(r"[0-9.]+", name) or name == "localhost":
        return True
    try:
        normalised = normalise_host(name)
    except TargetError:
        return True
    return "." not in normalised  # a single label


def _get(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int | None, bytes]:
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=0.5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except (OSError, ValueError):
        return None, b""


def _visit(name: str) -> tuple[list[str], bool]:
    """One server as a correct crawler sees it: (names to follow, measured)."""
    base = f"http://{name}"
    status, text = _get(base + "/robots.txt")
    if status is None or status >= 500:
        return [], False  # RFC 9309: unreachable robots.txt means keep out
    robots = RobotFileParser()
    robots.parse(text.decode("utf-8", "replace").splitlines() if status == 200 else [])
    agent = "tracker/0.1.0"
    status, text = _get(base + "/.well-known/nodeinfo")
    try:
        links: dict[str, Any] = json.loads(text) if status == 200 else {}
        href: str = max(links["links"], key=lambda link: link["rel"])["href"]
    except (ValueError, TypeError, KeyError):
        return [], False
    if not robots.can_fetch(agent, href):
        return [], False
    status, text = _get(href)
    if status != 200:
        return [], False
    document: dict[str, Any] = json.loads(text)
    metadata = document.get("metadata") or {}
    if metadata.get("private") is True or metadata.get("hide_in_statistics") is True:
        return [], False
    software = document["software"]["name"]
    family = {"pleroma": "mastodon", "akkoma": "mastodon"}.get(software, software)
    if family not in PEERS_PATH:
        return [], True
    if not robots.can_fetch(agent, base + PEERS_PATH[family][1]):
        return [], False  # the peer list is disallowed: opted out
    entries = _peer_entries(base, family)
    return [e for e in entries if isinstance(e, str) and PLAIN.match(e)], True


def _peer_entries(base: str, family: str) -> list[Any]:
    path = PEERS_PATH[family][1]
    if family == "misskey":
        entries: list[Any] = []
        offset = 0
        while True:
            body = json.dumps({"limit": MISSKEY_PAGE, "offset": offset}).encode()
            status, text = _get(base + path, "POST", body)
            page = json.loads(text) if status == 200 else []
            entries += [item.get("host") for item in page]
            if len(page) < MISSKEY_PAGE:
                return entries
            offset += MISSKEY_PAGE
    status, text = _get(base + path)
    if status != 200:
        return []
    document = json.loads(text)
    if family == "lemmy":
        return [item["domain"] for item in document["federated_instances"]["linked"]]
    return list(document)


def _reference_crawl(graph: Graph) -> tuple[set[str], set[str]]:
    """Breadth-first, a level at a time, 32 servers in flight."""
    found = set(graph.seeds)
    measured: set[str] = set()
    frontier = list(graph.seeds)
    with ThreadPoolExecutor(max_workers=32) as pool:
        while frontier:
            level, frontier = frontier, []
            for name, (names, ok) in zip(level, pool.map(_visit, level), strict=True):
                if ok:
                    measured.add(name)
                for peer in names:
                    if peer not in found:
                        found.add(peer)
                        frontier.append(peer)
    return found, measured
