"""The bluesky parsers on the real payload shapes (tests/fixtures/bluesky/)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support import payloads as pl
from tracker.model import Fetched, Observation, Parsed
from tracker.parsers import bluesky as p
from tracker.sanity import Rejection

NOW = datetime(2024, 11, 20, 12, 0, tzinfo=UTC)
RELAY = "bsky.network"
PDS = "pds.example.org"
TOTAL = f"relay:{RELAY}"
"""The relay's own series (network total, hosts counted); a PDS keeps its plain key."""


def at_relay(host: str) -> str:
    """The target of the relay's reading of one host."""
    return f"relay:{RELAY}/{host}"


def page(kind: str, body: Any, status: int = 200, **extra: Any) -> Fetched:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Fetched(
        kind=kind, url="https://x/xrpc", fetched_at=NOW, status=status, body=raw, **extra
    )


def failed(kind: str, status: int | None, error_kind: str, body: Any = b"") -> Fetched:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Fetched(
        kind=kind,
        url="https://x/xrpc",
        fetched_at=NOW,
        status=status,
        body=raw,
        error_kind=error_kind,
        error_detail=f"HTTP {status}" if status else "no answer",
    )


def values(parsed: Parsed) -> dict[tuple[str, str], int]:
    result: dict[tuple[str, str], int] = {}
    for observation in parsed.observations:
        assert observation.observed_at == NOW and observation.period == ""
        assert observation.platform == "bluesky"
        key = (observation.target, observation.metric)
        assert key not in result, f"{key} twice"
        result[key] = observation.value
    return result


def repos_pages(*pages: list[Any]) -> list[Fetched]:
    """listRepos pages in the fixture shape; each carries a cursor, then the empty page."""
    records = []
    for number, repos in enumerate(pages):
        body: dict[str, Any] = {"repos": repos}
        if repos:
            body["cursor"] = f"17000000000{number:02d}::did:plc:page{number}"
        records.append(page(p.LIST_REPOS, body))
    return records


def describe(invite_required: Any = True) -> Fetched:
    document = pl.payload("bluesky/describeServer.json")
    if invite_required is None:
        del document["inviteCodeRequired"]
    else:
        document["inviteCodeRequired"] = invite_required
    return page(p.DESCRIBE, document)


def parse_pds(records: list[Fetched], max_pages: int = 100) -> Parsed:
    return p.parse_pds(PDS, records, NOW, max_pages)


def parse_relay(records: list[Fetched], max_pages: int = 100) -> Parsed:
    return p.parse_relay(RELAY, records, NOW, max_pages)


# --- paging -------------------------------------------------------------------------


def test_page_step_follows_the_fixture_shapes() -> None:
    document = pl.payload("bluesky/listRepos_pds.json")
    items, cursor = p.page_step(document, "repos")
    assert items == document["repos"] and cursor == document["cursor"]
    assert p.page_step(pl.payload("bluesky/listRepos_last_page.json"), "repos") == ([], None)
    relay = pl.payload("bluesky/listHosts_relay.json")
    assert p.page_step(relay, "hosts") == (relay["hosts"], "212")


def test_an_empty_page_ends_the_listing_even_with_a_cursor() -> None:
    assert p.page_step({"cursor": "5", "repos": []}, "repos") == ([], None)
    assert p.page_step({"cursor": "", "repos": [{"did": "did:x"}]}, "repos")[1] is None


def test_a_numeric_cursor_is_passed_back_as_text() -> None:
    assert p.page_step({"cursor": 212, "hosts": [{}]}, "hosts")[1] == "212"


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"repos": {}},
        {"hosts": []},
        {"cursor": {"a": 1}, "repos": [{}]},
        {"cursor": True, "repos": [{}]},
    ],
)
def test_a_page_of_another_shape_is_refused(document: Any) -> None:
    with pytest.raises(p.PayloadError):
        p.page_step(document, "repos")


# --- PDS ----------------------------------------------------------------------------


def test_pds_counts_all_and_active_repos_across_pages() -> None:
    first = pl.payload("bluesky/listRepos_pds.json")
    records = [describe(True), page(p.LIST_REPOS, first), page(p.LIST_REPOS, {"repos": []})]
    parsed = parse_pds(records)
    repos = first["repos"]
    active = [r for r in repos if r["active"] is True and "status" not in r]
    assert values(parsed) == {
        (PDS, "users_total"): len(repos),
        (PDS, "users_active"): len(active),
        (PDS, "registrations_open"): 0,
    }
    assert parsed.failure is None and parsed.rejections == []


def test_pds_counts_each_did_once_and_a_full_last_page_is_not_the_end() -> None:
    repos = pl.payload("bluesky/listRepos_pds.json")["repos"]
    # Three pages with a cursor each (the third a full page), then the empty one;
    # the second page repeats a repo of the first (a listing that shifted).
    pages = repos_pages(repos[:2], [repos[1], repos[2]], repos[3:], [])
    parsed = parse_pds(pages)
    assert values(parsed)[(PDS, "users_total")] == 4
    assert values(parsed)[(PDS, "users_active")] == 2


def test_registrations_open_follows_invite_code_required() -> None:
    last = page(p.LIST_REPOS, {"repos": []})
    assert values(parse_pds([describe(False), last]))[(PDS, "registrations_open")] == 1
    assert (PDS, "registrations_open") not in values(parse_pds([describe(None), last]))
    parsed = parse_pds([describe("yes"), last])
    assert (PDS, "registrations_open") not in values(parsed)
    assert parsed.rejections == [
        Rejection("registrations_open", "yes", "inviteCodeRequired is not a boolean")
    ]
    html = page(p.DESCRIBE, b"<!DOCTYPE html><html></html>")
    parsed = parse_pds([html, last])
    assert [r.metric for r in parsed.rejections] == ["registrations_open"]


def test_an_empty_pds_has_zero_accounts() -> None:
    assert values(parse_pds([page(p.LIST_REPOS, {"repos": []})])) == {
        (PDS, "users_total"): 0,
        (PDS, "users_active"): 0,
    }


def test_a_pds_without_account_status_gets_no_active_count() -> None:
    repos = pl.payload("bluesky/listRepos_pds.json")["repos"]
    for entry in repos:
        entry.pop("active")
        entry.pop("status", None)
    parsed = parse_pds(repos_pages(repos, []))
    assert values(parsed) == {(PDS, "users_total"): 4}
    assert [r.metric for r in parsed.rejections] == ["users_active"]


def test_a_listing_cut_off_after_good_pages_stores_no_count() -> None:
    repos = pl.payload("bluesky/listRepos_pds.json")["repos"]
    records = [describe(True), *repos_pages(repos[:2]), failed(p.LIST_REPOS, None, "deadline")]
    parsed = parse_pds(records)
    assert values(parsed) == {(PDS, "registrations_open"): 0}
    assert parsed.failure is not None and parsed.failure.kind == "deadline"
    assert "partial count is not stored" in parsed.failure.detail


def test_a_listing_the_fetch_stopped_early_is_incomplete() -> None:
    repos = pl.payload("bluesky/listRepos_pds.json")["repos"]
    parsed = parse_pds(repos_pages(repos[:2], repos[2:]))  # last page still has a cursor
    assert values(parsed) == {}
    assert parsed.failure is not None and parsed.failure.kind == "incomplete"
    parsed = parse_pds(repos_pages(repos[:2], repos[2:]), max_pages=2)
    assert parsed.failure is not None and parsed.failure.kind == "too_many_pages"


def test_a_repeated_cursor_is_a_loop_not_a_count() -> None:
    repos = pl.payload("bluesky/listRepos_pds.json")["repos"]
    body = {"cursor": "same", "repos": repos}
    parsed = parse_pds([page(p.LIST_REPOS, body), page(p.LIST_REPOS, body)])
    assert values(parsed) == {}
    assert parsed.failure is not None and parsed.failure.kind == "cursor_loop"


@pytest.mark.parametrize(
    "bad", [{"head": "x"}, "did:plc:abc", {"did": 5}, {"did": "not-a-did"}, None]
)
def test_a_repo_without_a_did_makes_the_count_unreliable(bad: Any) -> None:
    repos = pl.payload("bluesky/listRepos_pds.json")["repos"]
    parsed = parse_pds(repos_pages([*repos, bad], []))
    assert values(parsed) == {}
    assert parsed.failure is not None and parsed.failure.kind == "bad_shape"


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"<!doctype html><p>maintenance</p>", "not_json"),
        (b'{"cursor": "1", "repos": [{"did": "did:plc:a"', "bad_json"),
        (b"", "empty_body"),
        (b'{"repositories": []}', "bad_shape"),
    ],
)
def test_a_page_that_is_not_json_fails_the_listing(body: bytes, kind: str) -> None:
    parsed = parse_pds([describe(False), page(p.LIST_REPOS, body)])
    assert parsed.failure is not None and parsed.failure.kind == kind
    assert values(parsed) == {(PDS, "registrations_open"): 1}


def test_a_pds_that_never_answered_fails_with_the_network_error() -> None:
    parsed = parse_pds([failed(p.DESCRIBE, None, "refused")])
    assert parsed.failure is not None and parsed.failure.kind == "refused"
    assert parsed.observations == []


# --- relay --------------------------------------------------------------------------


def relay_pages(*pages: list[Any]) -> list[Fetched]:
    records = []
    for number, hosts in enumerate(pages):
        body: dict[str, Any] = {"hosts": hosts}
        if hosts:
            body["cursor"] = str(100 * (number + 1))
        records.append(page(p.LIST_HOSTS, body))
    return records


def test_relay_records_every_host_and_totals_the_active_ones() -> None:
    document = pl.payload("bluesky/listHosts_relay.json")
    parsed = parse_relay([page(p.LIST_HOSTS, document), page(p.LIST_HOSTS, {"hosts": []})])
    hosts = document["hosts"]
    active = [h for h in hosts if h["status"] == "active"]
    expected = {(at_relay(h["hostname"]), "users_total"): h["accountCount"] for h in hosts}
    expected[(TOTAL, "users_total")] = sum(h["accountCount"] for h in active)
    expected[(TOTAL, "servers_total")] = len(active)
    assert values(parsed) == expected
    assert parsed.failure is None and parsed.rejections == []


def test_relay_host_names_are_normalised_and_bad_ones_refused() -> None:
    hosts = [
        {"hostname": "PDS.Example.ORG.", "accountCount": 7, "status": "active"},
        {"hostname": "bücher.example", "accountCount": "3", "status": "active"},
        {"hostname": "pds.example.org", "accountCount": 99, "status": "active"},  # twice
        {"hostname": "self.host:2583", "accountCount": 1},  # no status: counted
        {"hostname": "https://a.example/path", "accountCount": 5, "status": "active"},
        {"hostname": "bad host", "accountCount": 5, "status": "active"},
        {"hostname": 42, "accountCount": 5, "status": "active"},
        "not-an-object",
        {"hostname": "quiet.example", "status": "active"},  # no accountCount
    ]
    parsed = parse_relay(relay_pages(hosts, []))
    assert values(parsed) == {
        (at_relay("pds.example.org"), "users_total"): 7,
        (at_relay("xn--bcher-kva.example"), "users_total"): 3,
        (at_relay("self.host:2583"), "users_total"): 1,
        (TOTAL, "users_total"): 11,
        (TOTAL, "servers_total"): 3,
    }
    reasons = sorted(r.reason for r in parsed.rejections)
    assert reasons == sorted(
        [
            "host listed twice; the first listing is kept",
            "not a valid host name",
            "not a valid host name",
            "not a valid host name",
            "host is not an object",
        ]
    )


def test_relay_lies_are_refused_per_host_and_left_out_of_the_total() -> None:
    hosts = [
        {"hostname": "a.example", "accountCount": -4, "status": "active"},
        {"hostname": "b.example", "accountCount": 12.5, "status": "active"},
        {"hostname": "c.example", "accountCount": True, "status": "active"},
        {"hostname": "d.example", "accountCount": 99_000_000_000, "status": "active"},
        {"hostname": "e.example", "accountCount": 10, "status": "active"},
        {"hostname": "f.example", "accountCount": 20, "status": "throttled"},
        {"hostname": "g.example", "accountCount": 30, "status": ["active"]},
        {"hostname": "h.example", "accountCount": 40, "status": {"active": True}},
    ]
    parsed = parse_relay(relay_pages(hosts, []))
    assert values(parsed) == {
        (at_relay("e.example"), "users_total"): 10,
        (at_relay("f.example"), "users_total"): 20,
        (at_relay("g.example"), "users_total"): 30,
        (at_relay("h.example"), "users_total"): 40,
        (TOTAL, "users_total"): 10,
        (TOTAL, "servers_total"): 1,
    }
    assert {r.reason.split(":")[0] for r in parsed.rejections} == {
        "a.example",
        "b.example",
        "c.example",
        "d.example",
    }


def test_relay_total_above_the_plausible_maximum_is_refused() -> None:
    hosts = [{"hostname": f"h{i}.example", "accountCount": 9_000_000_000} for i in range(2)]
    parsed = parse_relay(relay_pages(hosts, []))
    assert (TOTAL, "users_total") not in values(parsed)
    assert values(parsed)[(TOTAL, "servers_total")] == 2
    assert [r.reason.split(":")[0] for r in parsed.rejections] == ["total"]


def test_relay_cut_off_keeps_the_hosts_read_but_stores_no_total() -> None:
    hosts = pl.payload("bluesky/listHosts_relay.json")["hosts"]
    records = [*relay_pages(hosts[:2]), failed(p.LIST_HOSTS, 503, "http_503", b"busy")]
    parsed = parse_relay(records)
    assert values(parsed) == {
        (at_relay(h["hostname"]), "users_total"): h["accountCount"] for h in hosts[:2]
    }
    assert parsed.failure is not None and parsed.failure.kind == "http_503"
    assert "partial count is not stored" in parsed.failure.detail


def test_relay_listing_no_hosts_is_no_data() -> None:
    parsed = parse_relay(relay_pages([]))
    assert parsed.observations == []
    assert parsed.failure is not None and parsed.failure.kind == "no_stats"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (404, b"Cannot GET /xrpc/com.atproto.sync.listHosts"),
        (501, {"error": "MethodNotImplemented", "message": "Method Not Implemented"}),
        (400, {"error": "MethodNotImplemented", "message": "Method Not Implemented"}),
        (400, {"error": "InvalidRequest", "message": "No service configured for x"}),
    ],
)
def test_a_server_without_list_hosts_is_not_implemented(status: int, body: Any) -> None:
    parsed = parse_relay([failed(p.LIST_HOSTS, status, f"http_{status}", body)])
    assert parsed.failure is not None and parsed.failure.kind == "not_implemented"
    assert "com.atproto.sync.listHosts" in parsed.failure.detail
    assert parsed.observations == []


def test_another_client_error_keeps_its_own_kind() -> None:
    body = {"error": "InvalidRequest", "message": "malformed cursor"}
    parsed = parse_relay([failed(p.LIST_HOSTS, 400, "http_400", body)])
    assert parsed.failure is not None and parsed.failure.kind == "http_400"
    assert "InvalidRequest" in parsed.failure.detail


def test_parsers_are_pure_and_repeatable() -> None:
    records = [page(p.LIST_HOSTS, pl.payload("bluesky/listHosts_relay.json"))]
    records.append(page(p.LIST_HOSTS, {"hosts": []}))
    first, second = parse_relay(records), parse_relay(records)
    assert first == second
    assert all(isinstance(o, Observation) for o in first.observations)


def test_relay_and_pds_readings_of_one_server_are_different_series() -> None:
    """Issue 10, item 4: a URL that is both relay and PDS, and a PDS the relay also
    lists, must not write two different counts into one series."""
    hosts = [
        {"hostname": RELAY, "accountCount": 40, "status": "active"},  # the relay lists itself
        {"hostname": PDS, "accountCount": 9, "status": "active"},
    ]
    relay = parse_relay(relay_pages(hosts, []))
    as_pds = [describe(), *repos_pages([{"did": "did:plc:a", "active": True}], [])]
    pds_of_relay = p.parse_pds(RELAY, as_pds, NOW, 100)
    pds = parse_pds(as_pds)
    assert values(relay) == {
        (TOTAL, "users_total"): 49,
        (TOTAL, "servers_total"): 2,
        (at_relay(RELAY), "users_total"): 40,
        (at_relay(PDS), "users_total"): 9,
    }
    relay_keys = set(values(relay))
    assert relay_keys.isdisjoint(values(pds_of_relay)) and relay_keys.isdisjoint(values(pds))
    assert (RELAY, "users_total") in values(pds_of_relay) and (PDS, "users_total") in values(pds)


def test_a_host_too_long_to_store_under_the_relay_is_refused() -> None:
    label = "a" * 63
    longest = ".".join([label, label, label, "b" * 61])  # 253 characters: a valid name
    hosts = [
        {"hostname": longest, "accountCount": 5, "status": "active"},
        {"hostname": "ok.example", "accountCount": 2, "status": "active"},
    ]
    parsed = parse_relay(relay_pages(hosts, []))
    assert values(parsed) == {
        (at_relay("ok.example"), "users_total"): 2,
        (TOTAL, "users_total"): 2,
        (TOTAL, "servers_total"): 1,
    }
    assert [r.reason for r in parsed.rejections] == [
        "host name too long to store under relay:bsky.network (255 characters at most)"
    ]
    assert all(len(target) <= 255 for target, _ in values(parsed))
