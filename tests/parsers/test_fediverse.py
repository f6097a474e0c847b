"""The fediverse parsers on the real payload shapes of `tests/fixtures/`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.payloads import payload
from tracker.model import Fetched, Observation
from tracker.parsers import fediverse as p

NOW = datetime(2022, 11, 9, 12, 0, tzinfo=UTC)


def record(kind: str, body: Any, status: int = 200, **extra: Any) -> Fetched:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Fetched(
        kind=kind, url=f"https://x/{kind}", fetched_at=NOW, status=status, body=raw, **extra
    )


def values(observations: list[Observation], period: str = "") -> dict[str, int]:
    return {o.metric: o.value for o in observations if o.period == period}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("wellknown_mastodon.json", "https://mastodon.example/nodeinfo/2.0"),
        ("wellknown_misskey.json", None),  # relative hrefs resolved below
        ("wellknown_gotosocial.json", "https://gts.example/nodeinfo/2.1"),
        ("wellknown_buggy_links_object.json", "https://host.example/nodeinfo/2.0"),
        ("wellknown_pixelfed.json", None),
    ],
)
def test_pick_nodeinfo_prefers_newest_2x(name: str, expected: str | None) -> None:
    document = payload(f"fediverse/nodeinfo/{name}")
    href = p.pick_nodeinfo_href(document)
    if expected is not None:
        assert href == expected
    else:
        rels = {link["rel"].rsplit("/", 1)[-1]: link["href"] for link in document["links"]}
        assert href == rels.get("2.1", rels.get("2.0"))


def test_pick_nodeinfo_ignores_junk() -> None:
    assert p.pick_nodeinfo_href({"links": "nope"}) is None
    assert p.pick_nodeinfo_href([1, 2]) is None
    only_1x = {"links": [{"rel": "http://nodeinfo.diaspora.software/ns/schema/1.0", "href": "/n"}]}
    assert p.pick_nodeinfo_href(only_1x) is None


def test_mastodon_nodeinfo_plus_instance_activity_and_peers() -> None:
    records = [
        record(p.NODEINFO, payload("fediverse/nodeinfo/mastodon_2.0.json")),
        record(p.INSTANCE_V2, payload("fediverse/mastodon/instance_v2.json")),
        record(p.ACTIVITY, payload("fediverse/mastodon/instance_activity.json")),
        record(p.PEERS, payload("fediverse/mastodon/instance_peers.json")),
    ]
    parsed = p.parse("mastodon.social", records, NOW)
    assert parsed.failure is None
    assert (parsed.platform, parsed.software, parsed.version) == ("mastodon", "mastodon", "4.3.2")
    # NodeInfo wins over the instance API for the same metric (409321, not v2's 243035).
    assert values(parsed.observations) == {
        "users_total": 1287176,
        "users_active_month": 409321,
        "users_active_halfyear": 675975,
        "posts_total": 54158669,
        "registrations_open": 1,
        "peers_total": 5,
    }
    weekly = [o for o in parsed.observations if o.period == "week"]
    assert len(weekly) == 11 * 3  # the newest, partial bucket is not stored
    assert {o.observed_at.weekday() for o in weekly} == {0}
    assert all(o.replace is False for o in weekly)  # these windows are not ISO-aligned


def test_activity_bucket_goes_to_the_week_it_mostly_covers() -> None:
    # 1667311392 = Tue 2022-11-01 14:03 UTC: the window Tue..Mon lies mostly in the
    # ISO week of Monday 2022-10-31.
    document = payload("fediverse/mastodon/instance_activity.json")
    observations, rejected = p.read_activity(document, "mastodon", "m.s", NOW)
    assert not rejected
    by_week = {(o.metric, o.observed_at): o.value for o in observations}
    assert by_week[("registrations", datetime(2022, 10, 31, tzinfo=UTC))] == 80401
    assert by_week[("statuses", datetime(2022, 10, 31, tzinfo=UTC))] == 1026807
    # The newest bucket (week 1667916192) is partial and skipped.
    assert ("registrations", datetime(2022, 11, 7, tzinfo=UTC)) not in by_week


def test_aligned_buckets_replace_and_hostile_buckets_are_rejected() -> None:
    monday = int(datetime(2022, 10, 31, tzinfo=UTC).timestamp())
    document = [
        {"week": str(monday + 7 * 86400), "statuses": "1", "logins": "1", "registrations": "1"},
        {"week": str(monday), "statuses": "-3", "logins": "12.5", "registrations": "7"},
        {"week": "soon", "statuses": "1", "logins": "1", "registrations": "1"},
        "garbage",
    ]
    observations, rejected = p.read_activity(document, "mastodon", "t", NOW)
    assert [(o.metric, o.value, o.replace) for o in observations] == [("registrations", 7, True)]
    assert {r.reason for r in rejected} == {
        "negative count",
        "not a number",
        "activity bucket is not an object",
    }


def test_misskey_uses_local_counts_not_federated_ones() -> None:
    records = [
        record(p.NODEINFO, payload("fediverse/nodeinfo/misskey_2.1.json")),
        record(p.MISSKEY_STATS, payload("fediverse/misskey/stats.json")),
    ]
    parsed = p.parse("misskey.io", records, NOW)
    assert parsed.platform == "misskey"
    assert values(parsed.observations) == {
        "users_total": 532799,
        "posts_total": 186211206,
        "comments_total": 0,
        "peers_total": 41947,
        "registrations_open": 1,
    }  # activeMonth/activeHalfyear are null on Misskey: absent, not zero


def test_lemmy_site_counts_fill_what_nodeinfo_lacks() -> None:
    records = [
        record(p.NODEINFO, payload("fediverse/nodeinfo/lemmy_2.1.json")),
        record(p.LEMMY_SITE, payload("fediverse/lemmy/site_v3.json")),
    ]
    parsed = p.parse("lemmy.example", records, NOW)
    assert parsed.platform == "lemmy"
    got = values(parsed.observations)
    assert got["users_active_day"] == 5233
    assert got["users_active_week"] == 9773
    assert got["users_active_month"] == 14683
    assert got["comments_total"] == 3288700


def test_lemmy_1_0_counts_under_local_site() -> None:
    document = payload("fediverse/lemmy/site_v3.json")
    counts = document["site_view"].pop("counts")
    document["site_view"]["local_site"].update(counts)
    collected = p.Counts()
    p.read_lemmy_site(document, collected)
    assert collected.raw["users_total"] == counts["users"]


@pytest.mark.parametrize(
    ("name", "platform", "expected"),
    [
        ("akkoma_2.1.json", "pleroma", None),
        ("pleroma_2.0.json", "pleroma", None),
        ("pixelfed_2.0.json", "pixelfed", None),
        ("lemmy_2.0_legacy_0.18.json", "lemmy", None),
        ("gotosocial_2.1.json", "gotosocial", None),
    ],
)
def test_nodeinfo_only_servers(name: str, platform: str, expected: None) -> None:
    document = payload(f"fediverse/nodeinfo/{name}")
    parsed = p.parse("x", [record(p.NODEINFO, document)], NOW)
    assert parsed.failure is None
    assert parsed.platform == platform
    users = document["usage"]["users"]
    assert values(parsed.observations)["users_total"] == users["total"]
    half = users.get("activeHalfyear", users.get("activeHalfYear"))
    if half is not None:
        assert values(parsed.observations)["users_active_halfyear"] == half


def test_counts_as_strings_are_numbers() -> None:
    parsed = p.parse(
        "blog",
        [record(p.NODEINFO, payload("fediverse/nodeinfo/quirk_counts_as_strings_2.0.json"))],
        NOW,
    )
    assert values(parsed.observations) == {
        "users_total": 3,
        "users_active_halfyear": 2,
        "users_active_month": 1,
        "posts_total": 367,
        "comments_total": 1053,
        "registrations_open": 0,
    }


def test_gotosocial_zero_mode_is_withheld_not_zero_users() -> None:
    parsed = p.parse(
        "gts",
        [record(p.NODEINFO, payload("fediverse/nodeinfo/gotosocial_2.0_stats_mode_zero.json"))],
        NOW,
    )
    assert "users_total" not in values(parsed.observations)
    assert any("withheld" in r.reason for r in parsed.rejections)


def test_active_above_total_keeps_total_and_records_why() -> None:
    document = payload("fediverse/nodeinfo/mastodon_2.0.json")
    document["usage"]["users"] = {"total": 100, "activeMonth": 500, "activeHalfyear": 90}
    parsed = p.parse("t", [record(p.NODEINFO, document)], NOW)
    got = values(parsed.observations)
    assert got["users_total"] == 100
    assert "users_active_month" not in got
    assert got["users_active_halfyear"] == 90
    [rejection] = parsed.rejections
    assert rejection.metric == "users_active_month"
    assert "more active users than users in total" in rejection.reason


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"<!DOCTYPE html><html><body>Welcome</body></html>", "not_json"),
        (b'{"version": "2.0", "software": {"name": "mast', "bad_json"),
        (b"", "empty_body"),
        (b'["not", "an", "object"]', "bad_shape"),
    ],
)
def test_nodeinfo_that_is_not_nodeinfo_fails_with_kind(body: bytes, kind: str) -> None:
    parsed = p.parse("t", [record(p.NODEINFO, body)], NOW)
    assert parsed.failure is not None
    assert parsed.failure.kind == kind
    assert parsed.observations == []


def test_no_answer_at_all_names_the_network_error() -> None:
    records = [
        Fetched("robots.txt", "u", NOW, error_kind="refused", error_detail="Connection refused"),
        Fetched(p.WELLKNOWN, "u", NOW, error_kind="refused", error_detail="not fetched"),
    ]
    failure = p.parse("t", records, NOW).failure
    assert failure is not None and failure.kind == "refused"


def test_server_without_any_stats_is_no_stats() -> None:
    records = [record(p.WELLKNOWN, {"error": "nope"}, status=404, error_kind="http_404")]
    failure = p.parse("t", records, NOW).failure
    assert failure is not None and failure.kind == "no_stats"


def test_mastodon_without_nodeinfo_uses_v1_instance() -> None:
    records = [
        record(p.WELLKNOWN, {}, status=404, error_kind="http_404"),
        record(p.INSTANCE_V1, payload("fediverse/mastodon/instance_v1.json")),
    ]
    parsed = p.parse("counter.social", records, NOW)
    assert parsed.failure is None
    assert parsed.platform == "mastodon"
    assert values(parsed.observations)["users_total"] == 706707


@pytest.mark.parametrize(
    ("software", "family"),
    [
        ("mastodon", "mastodon"),
        ("Fedibird", "mastodon"),
        ("sharkey", "misskey"),
        ("akkoma", "pleroma"),
        ("lemmy", "lemmy"),
        ("Some Thing!", "some-thing-"),
    ],
)
def test_platform_families(software: str, family: str) -> None:
    assert p.platform_of(software) == family


# Issue 10, item 3: a platform guessed from the Mastodon fallback is marked as a guess,
# so storage never lets it overwrite the platform NodeInfo taught.


def test_platform_from_nodeinfo_is_evidence() -> None:
    parsed = p.parse(
        "pl", [record(p.NODEINFO, payload("fediverse/nodeinfo/pleroma_2.0.json"))], NOW
    )
    assert (parsed.platform, parsed.platform_known) == ("pleroma", True)
    assert parsed.observations
    assert all(o.platform == "pleroma" and o.platform_known for o in parsed.observations)


def test_platform_from_the_mastodon_fallback_is_a_guess() -> None:
    records = [
        record(p.WELLKNOWN, {}, status=502, error_kind="http_502"),
        record(p.INSTANCE_V1, payload("fediverse/mastodon/instance_v1.json")),
        record(p.ACTIVITY, payload("fediverse/mastodon/instance_activity.json")),
    ]
    parsed = p.parse("pl", records, NOW)
    assert parsed.failure is None
    assert (parsed.platform, parsed.platform_known) == ("mastodon", False)
    assert {o.period for o in parsed.observations} == {"", "week"}
    assert not any(o.platform_known for o in parsed.observations)


@pytest.mark.parametrize(
    ("version", "platform"),
    [
        ("2.7.2 (compatible; Pleroma 2.5.0)", "pleroma"),
        ("2.7.2 (compatible; Akkoma 3.10.4)", "pleroma"),
        ("3.5.3 (compatible; Pixelfed 0.12.3)", "pixelfed"),
        ("4.3.2", "mastodon"),
        ("0.17.3 git-1234abc", "mastodon"),
    ],
)
def test_the_fallback_guess_reads_a_compatible_version(version: str, platform: str) -> None:
    document = payload("fediverse/mastodon/instance_v1.json")
    document["version"] = version
    parsed = p.parse("x", [record(p.INSTANCE_V1, document)], NOW)
    assert (parsed.platform, parsed.platform_known) == (platform, False)


# Issue 10, item 6: the partial activity bucket, and buckets that cannot be read.


def _weekly(observations: list[Observation]) -> dict[tuple[str, datetime], int]:
    return {(o.metric, o.observed_at): o.value for o in observations if o.period == "week"}


def test_a_rejected_partial_bucket_does_not_cost_the_newest_complete_week() -> None:
    from tests.support.payloads import aligned_activity

    rows = [(100 + i, 50 + i, 10 + i) for i in range(12)]
    document: list[Any] = aligned_activity(NOW, rows)
    document[0]["week"] = "soon"  # the current, partial ISO week (Monday 2022-11-07)
    observations, rejected = p.read_activity(document, "mastodon", "t", NOW)
    weeks = {at for _, at in _weekly(observations)}
    assert datetime(2022, 11, 7, tzinfo=UTC) not in weeks
    # The newest complete week, 2022-10-31, is kept: 11 complete weeks in all.
    assert max(weeks) == datetime(2022, 10, 31, tzinfo=UTC)
    assert len(weeks) == 11
    assert _weekly(observations)[("statuses", datetime(2022, 10, 31, tzinfo=UTC))] == 101
    assert [(r.metric, r.raw, r.reason) for r in rejected] == [
        ("activity.week", "soon", "not a number")
    ]


def test_a_partial_bucket_that_is_no_object_does_not_cost_a_rolling_week() -> None:
    # Current Mastodon: rolling windows; the newest (2022-11-08 14:03) holds today only.
    document: list[Any] = payload("fediverse/mastodon/instance_activity.json")
    document[0] = "garbage"
    observations, rejected = p.read_activity(document, "mastodon", "m.s", NOW)
    weekly = _weekly(observations)
    # The window 2022-11-01 14:03 .. 2022-11-08 14:03 ended before NOW: it is complete.
    assert weekly[("registrations", datetime(2022, 10, 31, tzinfo=UTC))] == 80401
    assert len(weekly) == 11 * 3
    assert [r.reason for r in rejected] == ["activity bucket is not an object"]


def test_a_rejected_old_bucket_still_leaves_the_partial_one_out() -> None:
    from tests.support.payloads import aligned_activity

    document: list[Any] = aligned_activity(NOW, [(1, 1, 1)] * 12)
    document[5] = {"statuses": "1", "logins": "1", "registrations": "1"}  # no week
    observations, rejected = p.read_activity(document, "mastodon", "t", NOW)
    weeks = {at for _, at in _weekly(observations)}
    assert max(weeks) == datetime(2022, 10, 31, tzinfo=UTC)  # 2022-11-07 is partial
    assert len(weeks) == 10
    assert [(r.metric, r.reason) for r in rejected] == [
        ("activity.week", "activity bucket without a week")
    ]


def test_every_unreadable_bucket_has_a_rejection() -> None:
    monday = int(datetime(2022, 10, 31, tzinfo=UTC).timestamp())
    document = [
        {"week": str(monday + 7 * 86400), "statuses": "1", "logins": "1", "registrations": "1"},
        {"week": str(monday), "statuses": "2", "logins": "2", "registrations": "2"},
        ["not", "an", "object"],
        17,
        {"statuses": "3", "logins": "3", "registrations": "3"},
        {"week": None, "statuses": "4"},
    ]
    observations, rejected = p.read_activity(document, "mastodon", "t", NOW)
    assert {o.value for o in observations} == {2}
    assert sorted((r.metric, r.raw, r.reason) for r in rejected) == [
        ("activity", "17", "activity bucket is not an object"),
        ("activity", "['not', 'an', 'object']", "activity bucket is not an object"),
        ("activity.week", "(absent)", "activity bucket without a week"),
        ("activity.week", "(absent)", "activity bucket without a week"),
    ]


def test_a_rolling_window_that_ended_as_the_server_answered_is_complete() -> None:
    # The server computed its answer at 2022-11-08 14:03:12, a little after our request
    # began: the window ending then is complete, the one starting then is partial.
    document: list[Any] = payload("fediverse/mastodon/instance_activity.json")
    document[0] = {"week": None}
    asked = datetime(2022, 11, 8, 14, 2, 40, tzinfo=UTC)
    observations, _ = p.read_activity(document, "mastodon", "m.s", asked)
    assert ("registrations", datetime(2022, 10, 31, tzinfo=UTC)) in _weekly(observations)


def test_a_week_after_the_answer_is_rejected_not_taken_for_the_partial_one() -> None:
    from tests.support.payloads import aligned_activity

    document: list[Any] = aligned_activity(NOW, [(1, 1, 1)] * 12)
    document.append({"week": str(int(datetime(2031, 1, 6, tzinfo=UTC).timestamp()))})
    observations, rejected = p.read_activity(document, "mastodon", "t", NOW)
    weeks = {at for _, at in _weekly(observations)}
    assert max(weeks) == datetime(2022, 10, 31, tzinfo=UTC)  # the partial week stays out
    assert [r.reason for r in rejected] == ["a week in the future"]
