"""The Tumblr parsers on the real payload shapes of `tests/fixtures/tumblr/`."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tests.fixtures.tumblr.fake_api import KEY, blog_info, envelope, post
from tests.support.payloads import payload
from tracker.model import Fetched, Parsed
from tracker.parsers import tumblr as p

NOW = datetime(2022, 11, 10, 12, 0, tzinfo=UTC)  # the day after the fixture payload's posts
TODAY = NOW.date()
TARGET = "tag:twitter migration"


def at(day: date, hour: int = 12, minute: int = 0, second: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC).timestamp())


def days_ago(n: int) -> date:
    return TODAY - timedelta(days=n)


def record(
    body: Any,
    before: int | None,
    *,
    status: int = 200,
    kind: str = p.TAGGED,
    error_kind: str | None = None,
    attempts: int = 1,
) -> Fetched:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    query = "tag=twitter+migration" + (f"&before={before}" if before is not None else "")
    if status != 200 and error_kind is None:
        error_kind = "rate_limited" if status == 429 else f"http_{status}"
    return Fetched(
        kind=kind,
        url=f"https://api.tumblr.com/v2/tagged?{query}&limit=20",
        fetched_at=NOW,
        status=status,
        body=raw,
        error_kind=error_kind,
        error_detail=f"HTTP {status}" if error_kind else None,
        attempts=attempts,
    )


def page_of(stamps: list[int], first_id: int = 1000) -> dict[str, Any]:
    """A page in the real shape: posts newest first, ids as given."""
    ordered = sorted(stamps, reverse=True)
    return envelope([post(i, first_id + i, ts) for i, ts in enumerate(ordered)])


def parse(records: list[Fetched], days: int = 3, max_pages: int = 50) -> Parsed:
    return p.parse_tagged(TARGET, records, NOW, days=days, max_pages=max_pages)


def daily(parsed: Any) -> dict[str, int]:
    assert all(o.period == "day" and o.metric == "tagged_posts" for o in parsed.observations)
    assert all(o.target == TARGET and o.platform == "tumblr" for o in parsed.observations)
    return {o.observed_at.date().isoformat(): o.value for o in parsed.observations}


def test_read_page_on_the_fixture_payload() -> None:
    document = payload("tumblr/tagged.json")
    page = p.read_page(record(document, p.epoch(TODAY)))
    expected = [(item["id_string"], item["timestamp"]) for item in document["response"]]
    assert page.posts == expected
    assert page.items == 3 and not page.featured and page.rejections == []
    assert page.oldest == min(item["timestamp"] for item in document["response"])


def test_fixture_page_then_overlap_then_end_counts_each_post_once() -> None:
    document = payload("tumblr/tagged.json")
    oldest = min(item["timestamp"] for item in document["response"])
    overlap = envelope([document["response"][-1]])  # the boundary second, asked again
    records = [
        record(document, p.epoch(TODAY)),
        record(overlap, oldest + 1),
        record(envelope([]), oldest),
    ]
    parsed = parse(records)
    assert parsed.failure is None
    # 2022-11-09: the three posts of the file; the tag ran out, so earlier days are measured 0.
    assert daily(parsed) == {"2022-11-07": 0, "2022-11-08": 0, "2022-11-09": 3}
    assert [o.observed_at for o in parsed.observations][-1] == datetime(2022, 11, 9, tzinfo=UTC)


def test_only_days_the_pages_passed_completely_are_stored() -> None:
    stamps = [
        at(days_ago(1), 23, 59, 59),
        at(days_ago(1), 12),
        at(days_ago(1), 0, 0, 0),
        at(days_ago(3), 18),
        at(days_ago(3), 1),
        at(days_ago(4), 22),  # the oldest post seen: its day is only partly seen
    ]
    parsed = parse([record(page_of(stamps), p.epoch(TODAY))], days=5)
    assert parsed.failure is None
    assert daily(parsed) == {
        days_ago(3).isoformat(): 2,
        days_ago(2).isoformat(): 0,
        days_ago(1).isoformat(): 3,
    }


def test_a_post_at_midnight_does_not_prove_its_day_complete() -> None:
    # More posts of that very second may follow on the next page: only an older post proves it.
    stamps = [at(days_ago(1), 5), at(days_ago(2), 0, 0, 0)]
    parsed = parse([record(page_of(stamps), p.epoch(TODAY))], days=3)
    assert daily(parsed) == {days_ago(1).isoformat(): 1}


def test_a_day_after_the_first_before_is_not_covered() -> None:
    stamps = [at(days_ago(1), 3), at(days_ago(2), 3), at(days_ago(3), 3)]
    parsed = parse([record(page_of(stamps), p.epoch(days_ago(1)))], days=3)
    # The walk started at yesterday's 00:00, so yesterday was never asked for.
    assert daily(parsed) == {days_ago(2).isoformat(): 1}


def test_today_is_never_stored_even_if_served() -> None:
    stamps = [at(TODAY, 11), at(TODAY, 1), at(days_ago(1), 5), at(days_ago(2), 5)]
    parsed = parse([record(page_of(stamps), None)], days=3)
    assert TODAY.isoformat() not in daily(parsed)
    assert daily(parsed) == {days_ago(1).isoformat(): 1}


def test_duplicates_across_pages_are_counted_once_by_id_then_id_then_digest() -> None:
    a = post(0, 1, at(days_ago(1), 10))
    b = post(1, 2, at(days_ago(1), 9))
    del b["id_string"]  # only the numeric id
    c = post(2, 3, at(days_ago(1), 9))
    del c["id_string"], c["id"]  # no id at all: the object itself identifies it
    last = post(0, 4, at(days_ago(2), 9))
    records = [
        record(envelope([a, b, c]), p.epoch(TODAY)),
        record(envelope([b, c, last]), at(days_ago(1), 9) + 1),
        record(envelope([]), at(days_ago(2), 9)),
    ]
    assert daily(parse(records, days=2)) == {
        days_ago(2).isoformat(): 1,
        days_ago(1).isoformat(): 3,
    }


def test_hostile_timestamps_are_rejected_with_reasons_and_not_counted() -> None:
    good = at(days_ago(1), 8)
    posts = [
        post(0, 1, good),
        post(1, 2, good),
        post(2, 3, good),
        post(0, 4, good),
        post(1, 5, good),
        post(2, 6, good),
        post(0, 7, good),
    ]
    posts[1]["timestamp"] = str(good - 1)  # digits as a string: fine
    posts[2]["timestamp"] = -5
    posts[3]["timestamp"] = "soon"
    posts[4]["timestamp"] = True
    posts[5]["timestamp"] = 0  # 1970: before Tumblr existed
    del posts[6]["timestamp"]
    records = [record(envelope([*posts, "junk"]), p.epoch(TODAY)), record(envelope([]), good - 1)]
    parsed = parse(records, days=1)
    assert daily(parsed) == {days_ago(1).isoformat(): 2}
    reasons = sorted(r.reason for r in parsed.rejections)
    assert reasons == sorted(
        [
            "post 3 not counted: timestamp negative count",
            "post 4 not counted: timestamp not a number",
            "post 5 not counted: timestamp not a number (boolean)",
            "post 6 not counted: timestamp before Tumblr existed",
            "post 7 not counted: no timestamp",
            "not a post object",
        ]
    )


def test_a_page_without_any_usable_post_ends_the_walk() -> None:
    bad = post(0, 1, 0)
    bad["timestamp"] = "never"
    parsed = parse([record(envelope([bad]), p.epoch(TODAY))])
    assert parsed.failure is not None and parsed.failure.kind == "bad_shape"
    assert parsed.observations == []


def test_no_pages_means_nothing_was_due() -> None:
    parsed = parse([])
    assert parsed.failure is not None and parsed.failure.kind == "not_due"
    assert str(days_ago(1)) in parsed.failure.detail


def test_a_gap_in_the_paging_keeps_what_came_before_it() -> None:
    first = [at(days_ago(1), 5), at(days_ago(2), 5)]
    later = [at(days_ago(3), 5)]
    records = [
        record(page_of(first), p.epoch(TODAY)),
        record(page_of(later, 2000), at(days_ago(3), 0)),  # skips most of two days
    ]
    parsed = parse(records, days=3)
    assert parsed.failure is not None and parsed.failure.kind == "bad_paging"
    assert daily(parsed) == {days_ago(1).isoformat(): 1}


def test_rate_limit_mid_walk_fails_the_attempt_but_keeps_complete_days() -> None:
    first = [at(days_ago(1), 5), at(days_ago(2), 5)]
    records = [
        record(page_of(first), p.epoch(TODAY)),
        record(
            payload("tumblr/error_429_limit_exceeded.json"),
            at(days_ago(2), 5) + 1,
            status=429,
            attempts=4,
        ),
    ]
    parsed = parse(records, days=3)
    assert parsed.failure is not None and parsed.failure.kind == "rate_limited"
    assert "page 2" in parsed.failure.detail and "after 4 tries" in parsed.failure.detail
    assert "Errorino" not in parsed.failure.detail  # the server's joke is not repeated
    assert daily(parsed) == {days_ago(1).isoformat(): 1}


@pytest.mark.parametrize(
    ("name", "status", "kind"),
    [
        ("error_401_bad_api_key.json", 401, "auth"),
        ("error_404_blog_not_found.json", 404, "not_found"),
        ("error_429_limit_exceeded.json", 429, "rate_limited"),
    ],
)
def test_error_envelopes_map_to_failure_kinds(name: str, status: int, kind: str) -> None:
    body = payload(f"tumblr/{name}")
    body["errors"][0]["detail"] = f"bad api_key={KEY}"  # a server that echoes the key
    for http_status in (status, 200):  # 200: JSONP, the status only in meta.status
        parsed = parse([record(body, p.epoch(TODAY), status=http_status)])
        assert parsed.failure is not None and parsed.failure.kind == kind
        assert KEY not in parsed.failure.detail
        assert parsed.observations == []
    if kind == "auth":
        assert "TUMBLR_API_KEY" in parsed.failure.detail


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"<!DOCTYPE html><html><body>Tumblr is down</body></html>", "not_json"),
        (b'{"meta": {"status": 200}, "response": [{"id": 1, "tim', "bad_json"),
        (b"", "empty_body"),
        (json.dumps({"meta": {"status": 200}, "response": {"posts": []}}).encode(), "bad_shape"),
        (json.dumps([1, 2]).encode(), "bad_shape"),
    ],
)
def test_unusable_bodies_fail_with_their_kind(body: bytes, kind: str) -> None:
    parsed = parse([record(body, p.epoch(TODAY))])
    assert parsed.failure is not None and parsed.failure.kind == kind


def test_a_featured_tag_is_refused_not_miscounted() -> None:
    document = payload("tumblr/tagged.json")
    for item in document["response"]:
        item["featured_timestamp"] = item["timestamp"] + 86400
    parsed = parse([record(document, p.epoch(TODAY))])
    assert parsed.failure is not None and parsed.failure.kind == "featured_tag"
    assert parsed.observations == []


def test_page_cap_keeps_covered_days_and_says_what_was_left_out() -> None:
    page1 = [at(days_ago(1), 12, m) for m in range(20)]
    page2 = [at(days_ago(1), 1, m) for m in range(10)] + [at(days_ago(2), 20, m) for m in range(10)]
    records = [
        record(page_of(page1), p.epoch(TODAY)),
        record(page_of(page2, 2000), min(page1) + 1),
    ]
    parsed = parse(records, days=3, max_pages=2)
    assert parsed.failure is None
    assert daily(parsed) == {days_ago(1).isoformat(): 30}
    [note] = parsed.rejections
    assert note.raw == f"days before {days_ago(1)}" and "max_pages=2" in note.reason

    # The same pages with a cap of 1: not even yesterday is complete.
    capped = parse(records[:1], days=3, max_pages=1)
    assert capped.failure is not None and capped.failure.kind == "page_cap"
    assert capped.observations == []


def test_parse_is_pure_and_repeatable() -> None:
    stamps = [at(days_ago(d), h) for d in range(1, 5) for h in (1, 7, 13)]
    records = [record(page_of(stamps), p.epoch(TODAY)), record(envelope([]), min(stamps))]
    first = parse(records, days=4)
    assert parse(list(records), days=4) == first
    assert daily(first) == {days_ago(d).isoformat(): 3 for d in range(1, 5)}


# Blog info


def blog_record(body: Any, status: int = 200) -> Fetched:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Fetched(
        kind=p.BLOG_INFO,
        url="https://api.tumblr.com/v2/blog/staff/info",
        fetched_at=NOW,
        status=status,
        body=raw,
        error_kind=None if status == 200 else f"http_{status}",
        error_detail=None if status == 200 else f"HTTP {status}",
    )


def test_blog_info_on_the_fixture_payload() -> None:
    document = payload("tumblr/blog_info.json")
    parsed = p.parse_blog_info("blog:staff", [blog_record(document)], NOW)
    assert parsed.failure is None and parsed.platform == "tumblr"
    [observation] = parsed.observations
    assert (observation.metric, observation.value, observation.period) == (
        "posts_total",
        document["response"]["blog"]["posts"],
        "",
    )
    assert observation.target == "blog:staff" and observation.observed_at == NOW


@pytest.mark.parametrize(
    ("posts", "total_posts", "expected"),
    [
        ("5112", "same", 5112),  # digits as a string
        (None, 77, 77),  # only total_posts
        (12.0, "same", 12),
    ],
)
def test_blog_info_accepts_plausible_spellings(posts: Any, total_posts: Any, expected: int) -> None:
    parsed = p.parse_blog_info(
        "blog:x", [blog_record(blog_info(posts, total_posts=total_posts))], NOW
    )
    assert [o.value for o in parsed.observations] == [expected]


@pytest.mark.parametrize(
    ("posts", "reason"),
    [
        (-3, "negative count"),
        (99_000_000_000, "implausibly large (over 10,000,000,000)"),
        ("lots", "not a number"),
        (1.5, "fractional count"),
        (False, "not a number (boolean)"),
    ],
)
def test_blog_info_lies_are_rejected(posts: Any, reason: str) -> None:
    parsed = p.parse_blog_info("blog:x", [blog_record(blog_info(posts))], NOW)
    assert parsed.observations == []
    assert [r.reason for r in parsed.rejections] == [reason]
    assert parsed.failure is not None and parsed.failure.kind == "bad_value"


def test_blog_info_errors() -> None:
    missing = payload("tumblr/blog_info.json")
    del missing["response"]["blog"]["posts"], missing["response"]["blog"]["total_posts"]
    cases = [
        (blog_record(missing), "bad_shape"),
        (blog_record({"meta": {"status": 200}, "response": []}), "bad_shape"),
        (blog_record(payload("tumblr/error_404_blog_not_found.json"), 404), "not_found"),
        (blog_record(payload("tumblr/error_401_bad_api_key.json"), 401), "auth"),
        (blog_record(payload("tumblr/error_404_blog_not_found.json")), "not_found"),  # JSONP
        (blog_record(b"<html>maintenance</html>"), "not_json"),
        (blog_record(b"", 503), "http_503"),
    ]
    for fetched, kind in cases:
        parsed = p.parse_blog_info("blog:x", [fetched], NOW)
        assert parsed.failure is not None and parsed.failure.kind == kind, fetched
        assert parsed.observations == []
    assert p.parse_blog_info("blog:x", [], NOW).failure is not None
