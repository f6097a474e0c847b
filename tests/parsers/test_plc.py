"""The PLC export page parser: pure, on a fixture page written for this project.

tests/fixtures/plc/export_page.jsonl holds, in export order (the shapes of
@did-plc/server 0.0.1 and @did-plc/lib): a legacy `create` on bsky.social, a
genesis on a *.host.bsky.network PDS, one on Bridgy Fed, one on a third-party
PDS, an update moving the second DID elsewhere, a tombstone of the first, a
nullified genesis, two malformed lines (lines 8 and 9), a genesis without a PDS,
and two genesis operations sharing the page's last millisecond.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tracker.model import Fetched, PayloadError
from tracker.parsers import plc as p

PAGE = (Path(__file__).parents[1] / "fixtures" / "plc" / "export_page.jsonl").read_bytes()
LINES = PAGE.split(b"\n")
DAY1, DAY2 = date(2023, 4, 12), date(2023, 4, 13)
LAST = datetime(2023, 4, 13, 4, 53, 57, 57000, tzinfo=UTC)


def cid(line: int) -> str:
    return str(json.loads(LINES[line - 1])["cid"])


def test_a_page_counts_each_genesis_by_day_and_family() -> None:
    page = p.parse_page(PAGE, p.Cursor(), p.DEFAULT_FAMILIES)
    assert dict(page.counts) == {
        (DAY1, "bsky"): 2,  # the legacy create and the host.bsky.network genesis
        (DAY1, "bridge"): 1,
        (DAY2, "third_party"): 2,  # pds.example.net/ and SELF.Example.ORG:8443
        (DAY2, "bsky"): 1,
    }
    assert page.lines == 12 and page.new == 10 and page.repeated == 0
    assert dict(page.skipped) == {"update": 1, "tombstone": 1, "nullified": 1, "no_pds": 1}
    assert [r.reason for r in page.rejections] == [
        "line 8: no `cid`",
        "line 9: not a JSON object",
    ]
    assert all(r.metric == "plc_operation" for r in page.rejections)
    assert page.rejections[1].raw == "<not json at all>"


def test_the_cursor_rewinds_a_millisecond_and_remembers_the_boundary() -> None:
    page = p.parse_page(PAGE, p.Cursor(), p.DEFAULT_FAMILIES)
    assert page.cursor.last_time == LAST
    assert page.cursor.boundary == {cid(11), cid(12)}
    assert page.cursor.after == "2023-04-13T04:53:57.056Z"
    assert p.Cursor.loads(page.cursor.dumps()) == page.cursor
    assert p.Cursor.loads(None) == p.Cursor() and p.Cursor().after is None


def test_operations_repeated_across_the_boundary_are_not_counted_again() -> None:
    first = p.parse_page(b"\n".join(LINES[:11]), p.Cursor(), p.DEFAULT_FAMILIES)
    # The next page starts a millisecond before line 11: it repeats it, then line 12.
    second = p.parse_page(b"\n".join(LINES[10:]), first.cursor, p.DEFAULT_FAMILIES)
    assert second.repeated == 1 and second.new == 1
    assert dict(second.counts) == {(DAY2, "bsky"): 1}
    whole = p.parse_page(PAGE, p.Cursor(), p.DEFAULT_FAMILIES)
    assert first.counts + second.counts == whole.counts
    # Caught up: asked again, the directory repeats only the boundary.
    third = p.parse_page(b"\n".join(LINES[10:]), second.cursor, p.DEFAULT_FAMILIES)
    assert third.new == 0 and third.repeated == 2 and third.cursor == second.cursor


def test_a_server_ignoring_after_counts_nothing_twice() -> None:
    done = p.parse_page(PAGE, p.Cursor(), p.DEFAULT_FAMILIES)
    again = p.parse_page(PAGE, done.cursor, p.DEFAULT_FAMILIES)
    assert again.new == 0 and not again.counts and again.cursor == done.cursor


def test_sequence_numbers_become_the_cursor() -> None:
    numbered = [
        json.dumps({**json.loads(line), "seq": 100 + n}).encode()
        for n, line in enumerate(LINES)
        if line.startswith(b'{"did":"did:plc:') and b"operation" in line
    ]
    page = p.parse_page(b"\n".join(numbered), p.Cursor(), p.DEFAULT_FAMILIES)
    assert page.cursor.last_seq == 111 and page.cursor.after == "111"
    again = p.parse_page(b"\n".join(numbered[-3:]), page.cursor, p.DEFAULT_FAMILIES)
    assert again.new == 0 and again.repeated == 3


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"<!DOCTYPE html><html><body>Bad gateway</body></html>", "not_json"),
        (b'{"error": "InternalServerError"}', "bad_json"),
        (b"[1, 2, 3]\nnull", "bad_json"),
        (b"\xff\xfe garbage", "bad_json"),
    ],
)
def test_a_body_with_no_operation_is_refused_whole(body: bytes, kind: str) -> None:
    with pytest.raises(PayloadError) as caught:
        p.parse_page(body, p.Cursor(), p.DEFAULT_FAMILIES)
    assert caught.value.kind == kind


def test_an_empty_page_is_caught_up() -> None:
    cursor = p.Cursor(LAST, None, frozenset({"x"}))
    page = p.parse_page(b"", cursor, p.DEFAULT_FAMILIES)
    assert page.lines == 0 and page.new == 0 and page.cursor == cursor


@pytest.mark.parametrize(
    ("endpoint", "family"),
    [
        ("https://bsky.social", "bsky"),
        ("https://morel.us-east.host.bsky.network", "bsky"),
        ("https://BSKY.SOCIAL.", "bsky"),
        ("https://atproto.brid.gy", "bridge"),
        ("https://bsky.social.example.net", "third_party"),
        ("https://notbsky.social", "third_party"),
        ("pds.example.net", "third_party"),
        ("not a url at all", "third_party"),
        ("https://[::1", "third_party"),
    ],
)
def test_families_by_host_pattern(endpoint: str, family: str) -> None:
    assert p.family_of(endpoint, p.DEFAULT_FAMILIES) == family


def test_family_rules_are_config_and_first_match_wins() -> None:
    rules = {"eurosky": ["*.eurosky.example"], "bsky": ["*.example"]}
    assert p.family_of("https://a.eurosky.example", rules) == "eurosky"
    assert p.family_of("https://b.example", rules) == "bsky"
    assert p.family_of("https://bsky.social", rules) == "third_party"


def test_parse_gives_rejections_and_failures_never_counts() -> None:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    ok = Fetched("export", "https://plc/export", at, status=200, body=PAGE)
    parsed = p.parse("plc", [ok], at, families=p.DEFAULT_FAMILIES)
    assert parsed.failure is None and not parsed.observations and len(parsed.rejections) == 2
    failed = Fetched("export", "u", at, status=503, error_kind="http_503", error_detail="HTTP 503")
    assert p.parse("plc", [failed], at, families=p.DEFAULT_FAMILIES).failure is not None
    html = Fetched("export", "u", at, status=200, body=b"<html>", error_kind="not_json")
    assert p.parse("plc", [html], at, families=p.DEFAULT_FAMILIES).failure is not None
    note = Fetched(p.KIND_STOP, "u", at, error_detail="caught up")
    assert p.parse("plc", [note], at, families=p.DEFAULT_FAMILIES).failure is None
