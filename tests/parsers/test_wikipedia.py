"""The pageviews parser and the title/wiki handling, on the real shapes of the Wikimedia API."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.payloads import payload
from tracker.errors import ConfigError
from tracker.loader import parse_config
from tracker.model import Fetched
from tracker.parsers import wikipedia as p

API = "https://wikimedia.org/api/rest_v1"
NOW = datetime(2022, 11, 9, 6, 0, tzinfo=UTC)
MASTODON = "en.wikipedia/Mastodon_(social_network)"
NOV1, NOV8 = date(2022, 11, 1), date(2022, 11, 8)


def url(key: str = MASTODON, first: date = NOV1, last: date = NOV8) -> str:
    wiki, title = p.split_key(key)
    return API + p.request_path(wiki, title, first, last)


def answer(
    body: Any,
    status: int = 200,
    kind: str = p.KIND_BACKFILL,
    key: str = MASTODON,
    first: date = NOV1,
    last: date = NOV8,
) -> Fetched:
    """A response as the session logs it (non-2xx carries `http_<status>`)."""
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    failed = not 200 <= status < 300
    return Fetched(
        kind=kind,
        url=url(key, first, last),
        fetched_at=NOW,
        status=status,
        error_kind=f"http_{status}" if failed else None,
        error_detail=f"HTTP {status}" if failed else None,
        body=raw,
        content_type="application/json",
    )


def parse(*records: Fetched, key: str = MASTODON) -> Any:
    return p.parse(key, records, NOW, platform="mastodon")


def daily() -> dict[str, Any]:
    document: dict[str, Any] = payload("wikipedia/pageviews_per_article_daily.json")
    return document


# --- titles, wikis and paths ------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("Mastodon (social network)", "Mastodon_(social_network)"),
        ("Mastodon_(social_network)", "Mastodon_(social_network)"),
        ("  Mastodon __ (social  network) _", "Mastodon_(social_network)"),
        ("マストドン\u3000(ミニブログ)", "マストドン_(ミニブログ)"),  # ideographic space
        ("X\u00a0(social network)", "X_(social_network)"),  # no-break space
        ("\u200eMixi2", "Mixi2"),  # a left-to-right mark copied along
        ("mixi", "mixi"),  # first letter as written (see the collector's docs)
    ],
)
def test_titles_take_the_form_wikipedia_urls_use(written: str, canonical: str) -> None:
    assert p.canonical_title(written) == canonical


def test_decomposed_japanese_is_composed_like_mediawiki_does() -> None:
    decomposed = unicodedata.normalize("NFD", "ブルースカイ")
    assert decomposed != "ブルースカイ"
    assert p.canonical_title(decomposed) == "ブルースカイ"


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("", "must not be empty"),
        (" _ \u3000", "must not be empty"),
        ("Twitter#History", "cannot contain"),
        ("A[b]", "cannot contain"),
        ("X_%28social_network%29", "percent-encoded"),
        ("line\nbreak", "control characters"),
        ("あ" * 86, "longer than Wikipedia allows"),  # 258 bytes in UTF-8
    ],
)
def test_impossible_titles_are_refused(written: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        p.canonical_title(written)


def test_a_literal_percent_sign_is_a_title_character() -> None:
    assert p.canonical_title("100% Orange Juice") == "100%_Orange_Juice"


@pytest.mark.parametrize(
    ("written", "wiki"),
    [
        ("en.wikipedia", "en.wikipedia"),
        ("JA.Wikipedia.org", "ja.wikipedia"),
        ("https://ja.wikipedia.org/", "ja.wikipedia"),
        ("en.m.wikipedia.org", "en.wikipedia"),
        ("zh-min-nan.wikipedia", "zh-min-nan.wikipedia"),
    ],
)
def test_wikis_are_normalised(written: str, wiki: str) -> None:
    assert p.canonical_wiki(written) == wiki


@pytest.mark.parametrize("written", ["wikipedia", "en.wiktionary", "example.org", "en", ""])
def test_other_sites_are_not_wikis(written: str) -> None:
    with pytest.raises(ValueError, match="must name a Wikipedia"):
        p.canonical_wiki(written)


def utf8_escaped(text: str) -> str:
    """Percent-encoding written out by hand, to check the code against."""
    return "".join(f"%{byte:02X}" for byte in text.encode("utf-8"))


@pytest.mark.parametrize(
    ("title", "segment"),
    [
        ("ミクシィ", utf8_escaped("ミクシィ")),
        (
            "マストドン_(ミニブログ)",
            utf8_escaped("マストドン") + "_(" + utf8_escaped("ミニブログ") + ")",
        ),
        ("AC/DC", "AC%2FDC"),
        ("Who?", "Who%3F"),
        ("100%_Orange_Juice", "100%25_Orange_Juice"),
        ("Tom_&_Jerry", "Tom_%26_Jerry"),
        ("Threads_(social_network)", "Threads_(social_network)"),
        ("C++", "C%2B%2B"),
    ],
)
def test_a_title_is_one_path_segment(title: str, segment: str) -> None:
    assert p.encode_title(title) == segment
    path = p.request_path("ja.wikipedia", title, NOV1, NOV8)
    assert path == (
        f"/metrics/pageviews/per-article/ja.wikipedia/all-access/user/{segment}"
        "/daily/20221101/20221108"
    )
    assert p.requested_range(API + path) == (NOV1, NOV8)


def test_target_keys_keep_slashes_in_titles() -> None:
    assert p.split_key(p.target_key("en.wikipedia", "AC/DC")) == ("en.wikipedia", "AC/DC")


# --- answers with data ------------------------------------------------------------------


def test_real_daily_shape_gives_one_day_value_per_item() -> None:
    document = daily()
    parsed = parse(answer(document))
    assert parsed.failure is None and parsed.rejections == []
    expected = {
        datetime.strptime(item["timestamp"], "%Y%m%d%H").replace(tzinfo=UTC): item["views"]
        for item in document["items"]
    }
    assert {o.observed_at: o.value for o in parsed.observations} == expected
    assert {(o.platform, o.target, o.metric, o.period) for o in parsed.observations} == {
        ("mastodon", MASTODON, "pageviews", "day")
    }
    assert all(o.observed_at.hour == 0 and o.replace for o in parsed.observations)


def views_by_day(parsed: Any) -> dict[int, int]:
    return {o.observed_at.day: o.value for o in parsed.observations}


def test_a_day_left_out_before_the_newest_day_had_no_views() -> None:
    document = daily()
    del document["items"][2]  # 2022-11-03: the API sends no item for a day without views
    views = views_by_day(parse(answer(document)))
    assert sorted(views) == [1, 2, 3, 4, 5]
    assert views[3] == 0
    assert [views[day] for day in (1, 2, 4, 5)] == [
        item["views"] for i, item in enumerate(daily()["items"]) if i != 2
    ]


def test_days_asked_for_before_the_first_item_had_no_views() -> None:
    views = views_by_day(parse(answer(daily(), first=date(2022, 10, 29))))
    assert [views.pop(day) for day in (29, 30, 31)] == [0, 0, 0]
    assert sorted(views) == [1, 2, 3, 4, 5]


def test_days_after_the_newest_item_may_not_be_loaded_yet_and_stay_missing() -> None:
    document = daily()
    del document["items"][4]  # 2022-11-05; 11-06..11-08 were asked for too
    assert sorted(views_by_day(parse(answer(document)))) == [1, 2, 3, 4]


def test_an_answer_with_a_rejected_item_fills_no_gaps() -> None:
    document = daily()
    del document["items"][2]
    document["items"][0]["views"] = -4
    assert sorted(views_by_day(parse(answer(document)))) == [2, 4, 5]


def test_untrustworthy_counts_are_rejected_one_by_one() -> None:
    document = daily()
    items = document["items"]
    items[0]["views"] = "20531"  # digits as a string: accepted
    items[1]["views"] = -4
    items[2]["views"] = 99_000_000_000
    items[3]["views"] = 12.5
    del items[4]["views"]
    parsed = parse(answer(document))
    assert parsed.failure is None
    assert [(o.observed_at.day, o.value) for o in parsed.observations] == [(1, 20531)]
    reasons = sorted(r.reason for r in parsed.rejections)
    assert reasons == [
        "fractional count on 2022-11-04",
        "implausibly large (over 10,000,000,000) on 2022-11-03",
        "negative count on 2022-11-02",
        "no views count on 2022-11-05",
    ]


def test_items_that_do_not_belong_to_the_request_are_rejected() -> None:
    document = daily()
    items = document["items"]
    items[0]["article"] = "Mastodon"  # another article's numbers
    items[1]["agent"] = "all-agents"  # crawlers included: not what was asked
    items[2]["timestamp"] = "2022103100"  # before the requested range
    items[3]["timestamp"] = "2022-11-04"  # not the API's format
    items.append(dict(items[4]))  # the same day twice
    parsed = parse(answer(document))
    assert [o.observed_at.day for o in parsed.observations] == [5]
    reasons = [r.reason for r in parsed.rejections]
    assert reasons[0] == "article is 'Mastodon', not 'Mastodon_(social_network)' as requested"
    assert reasons[1] == "agent is 'all-agents', not 'user' as requested"
    assert reasons[2] == "2022-10-31 is outside the requested days 2022-11-01..2022-11-08"
    assert reasons[3] == "not a daily timestamp"
    assert reasons[4] == "a second count for 2022-11-05"


def test_a_day_that_has_not_ended_is_not_stored() -> None:
    document = daily()
    document["items"][4]["timestamp"] = "2022110900"  # "today" at NOW
    parsed = parse(answer(document, last=date(2022, 11, 9)))
    assert [r.reason for r in parsed.rejections] == ["2022-11-09 has not ended yet"]
    assert len(parsed.observations) == 4


def test_monthly_items_for_a_daily_request_are_rejected() -> None:
    document = payload("wikipedia/pageviews_per_article_monthly_ja.json")
    parsed = parse(answer(document, key="ja.wikipedia/Mixi"), key="ja.wikipedia/Mixi")
    assert parsed.observations == []
    assert parsed.failure is not None and parsed.failure.kind == "bad_shape"
    assert {r.reason for r in parsed.rejections} == {
        "granularity is 'monthly', not 'daily' as requested"
    }


def test_japanese_titles_are_matched_in_any_spelling_of_spaces() -> None:
    key = "ja.wikipedia/マストドン_(ミニブログ)"
    document = daily()
    for item in document["items"]:
        item["project"], item["article"] = "ja.wikipedia", "マストドン (ミニブログ)"
    parsed = parse(answer(document, key=key), key=key)
    assert parsed.rejections == [] and len(parsed.observations) == 5


# --- answers without data ---------------------------------------------------------------


@pytest.mark.parametrize(
    "shape",
    ["wikipedia/error_404_no_data.json", "wikipedia/error_404_no_data_legacy_restbase.json"],
)
def test_no_data_on_a_first_fetch_means_no_such_article(shape: str) -> None:
    parsed = parse(answer(payload(shape), status=404))
    assert parsed.observations == []
    assert parsed.failure is not None
    assert (parsed.failure.kind, parsed.failure.detail) == (
        "no_such_article",
        "no such article (or no views since 2022-11-01)",
    )


@pytest.mark.parametrize(
    "shape",
    ["wikipedia/error_404_no_data.json", "wikipedia/error_404_no_data_legacy_restbase.json"],
)
def test_no_data_on_an_update_is_simply_nothing_new(shape: str) -> None:
    parsed = parse(answer(payload(shape), status=404, kind=p.KIND_UPDATE))
    assert parsed.failure is None and parsed.observations == [] and parsed.rejections == []


def test_an_empty_item_list_is_read_like_no_data() -> None:
    assert parse(answer({"items": []})).failure.kind == "no_such_article"
    assert parse(answer({"items": []}, kind=p.KIND_UPDATE)).failure is None


@pytest.mark.parametrize(
    ("shape", "status"),
    [
        ("wikipedia/error_404_invalid_route.json", 404),
        ("wikipedia/error_400_no_full_months.json", 400),
    ],
)
def test_a_refused_request_is_a_bug_report(shape: str, status: int) -> None:
    parsed = parse(answer(payload(shape), status=status))
    assert parsed.failure is not None and parsed.failure.kind == "bad_request"
    assert payload(shape)["detail"] in parsed.failure.detail
    assert "/per-article/en.wikipedia/" in parsed.failure.detail


def test_a_404_without_a_problem_body_keeps_its_status() -> None:
    parsed = parse(answer(b"<html>Not Found</html>", status=404))
    assert parsed.failure is not None and parsed.failure.kind == "http_404"


# --- broken answers and skips -----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"<!DOCTYPE html><html>Wikimedia Error</html>", "not_json"),
        (b'{"items": [{"project": "en.wikipedia", "views": 3', "bad_json"),
        (b"", "empty_body"),
        (b'{"detail": "nothing here"}', "bad_shape"),
        (b'{"items": {"timestamp": "2022110100"}}', "bad_shape"),
        (b'{"items": ["2022110100", null]}', "bad_shape"),
    ],
)
def test_bodies_that_are_not_the_answer(body: bytes, kind: str) -> None:
    parsed = parse(answer(body))
    assert parsed.failure is not None and parsed.failure.kind == kind
    assert parsed.observations == []


def test_transport_failures_keep_their_kind() -> None:
    timeout = Fetched(
        kind=p.KIND_BACKFILL,
        url=url(),
        fetched_at=NOW,
        error_kind="timeout",
        error_detail="no data for too long",
    )
    parsed = parse(timeout)
    assert parsed.failure is not None and parsed.failure.kind == "timeout"
    busy = answer(b"<html>busy</html>", status=503)
    parsed = parse(busy)
    assert parsed.failure is not None
    assert (parsed.failure.kind, parsed.failure.detail) == (
        "http_503",
        "pageviews_backfill: HTTP 503",
    )


def test_a_noted_skip_is_not_due() -> None:
    note = Fetched(
        kind=p.KIND_NOT_DUE,
        url=url(),
        fetched_at=NOW,
        error_kind="not_due",
        error_detail="asked again from 2022-11-15 06:00Z",
    )
    parsed = parse(note)
    assert parsed.failure is not None
    assert (parsed.failure.kind, parsed.failure.detail) == (
        "not_due",
        "asked again from 2022-11-15 06:00Z",
    )


def test_an_empty_fetch_log_means_the_deadline_cut_the_fetch_short() -> None:
    assert parse().failure.kind == "deadline"


# --- settings ---------------------------------------------------------------------------


def config(articles: Any, **extra: Any) -> str:
    return json.dumps(
        {
            "contact": "https://example.org/tests",
            "collectors": {"wikipedia": {"articles": articles, **extra}},
        },
        ensure_ascii=False,
    )


def settings(articles: Any, **extra: Any) -> Any:
    return parse_config(config(articles, **extra), Path("config.yaml")).collectors["wikipedia"]


def test_settings_store_canonical_names() -> None:
    loaded = settings(
        [
            {
                "wiki": "ja.wikipedia.org",
                "title": "マストドン (ミニブログ)",
                "platform": "Mastodon",
            },
            {"wiki": "en.wikipedia", "title": "Bluesky", "platform": "bluesky"},
        ]
    )
    assert [(a.key, a.platform) for a in loaded.articles] == [
        ("ja.wikipedia/マストドン_(ミニブログ)", "mastodon"),
        ("en.wikipedia/Bluesky", "bluesky"),
    ]
    assert loaded.start == date(2022, 1, 1) and loaded.api == API


@pytest.mark.parametrize(
    ("articles", "extra", "message"),
    [
        (
            [
                {"wiki": "en.wikipedia", "title": "Tumblr", "platform": "tumblr"},
                {"wiki": "en.wikipedia", "title": " ", "platform": "x"},
            ],
            {},
            "collectors.wikipedia.articles.1.title: must not be empty",
        ),
        (
            [{"wiki": "en.wiktionary", "title": "Tumblr", "platform": "tumblr"}],
            {},
            "collectors.wikipedia.articles.0.wiki: must name a Wikipedia",
        ),
        (
            [{"wiki": "en.wikipedia", "title": "Tumblr#History", "platform": "tumblr"}],
            {},
            "collectors.wikipedia.articles.0.title: contains #",
        ),
        (
            [{"wiki": "en.wikipedia", "title": "Tumblr", "platform": ""}],
            {},
            "collectors.wikipedia.articles.0.platform: must be one word",
        ),
        (
            [{"wiki": "en.wikipedia", "title": "Tumblr"}],
            {},
            "collectors.wikipedia.articles.0.platform: required key is missing",
        ),
        (
            [
                {"wiki": "en.wikipedia", "title": "Tumblr", "platform": "tumblr"},
                {"wiki": "en.wikipedia.org", "title": "Tumblr", "platform": "yahoo"},
            ],
            {},
            "collectors.wikipedia.articles: item 1: en.wikipedia/Tumblr is already item 0",
        ),
        ([], {"start": "2015-06-30"}, "collectors.wikipedia.start: the pageviews API has no data"),
        ([], {"api": "ftp://example.org"}, "collectors.wikipedia.api: must be an http"),
    ],
)
def test_config_mistakes_are_one_line_naming_the_key(
    articles: Any, extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config(articles, **extra), Path("config.yaml"))
    text = str(caught.value)
    assert "\n" not in text
    assert message in text, text


def test_the_same_article_spelled_twice_is_one_target() -> None:
    from tracker.collectors.wikipedia import WikipediaCollector

    text = config(
        [
            {"wiki": "en.wikipedia", "title": "Mastodon (social network)", "platform": "mastodon"},
            {
                "wiki": "en.wikipedia.org",
                "title": "Mastodon_(social_network)",
                "platform": "mastodon",
            },
            {"wiki": "ja.wikipedia", "title": "Mixi", "platform": "mixi"},
        ]
    )
    loaded = parse_config(text, Path("config.yaml"))
    collector = WikipediaCollector(loaded.collectors["wikipedia"], loaded.http)  # type: ignore[arg-type]
    from tracker.storage.history import History

    assert [t.key for t in collector.targets(History(None))] == [MASTODON, "ja.wikipedia/Mixi"]
    assert collector.unavailable() is None


def test_no_articles_means_nothing_to_do() -> None:
    from tracker.collectors.wikipedia import WikipediaCollector

    loaded = parse_config(config([]), Path("config.yaml"))
    collector = WikipediaCollector(loaded.collectors["wikipedia"], loaded.http)  # type: ignore[arg-type]
    assert collector.unavailable() == (
        "collectors.wikipedia.articles is empty: list the articles to follow"
    )
