"""Pure parsers for Tumblr API v2: `/v2/tagged` pages into posts per UTC day; blog post counts.

`/v2/tagged` has no totals: it lists public posts under a tag, newest first, at
most 20 per call, paged backwards with `before=<epoch seconds>`. A day's count is
therefore only known once the pages reach past that day's 00:00 UTC (or the tag
runs out of posts), and only such *fully covered* days are stored; a covered day
without posts is a measured 0. Everything is derived from the fetch log alone
(the `before` each request sent is in its logged URL), so `tracker reparse` gets
the same days and counts as the run that fetched them.

Tumblr wraps every answer in `{"meta": {"status", "msg"}, "response", "errors"}`;
with JSONP the HTTP status is 200 and only `meta.status` tells the truth, so both
are read. Error texts from the server (`errors[].detail` is a localized joke) are
never copied into failure details: they carry nothing useful and could echo what
was sent.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tracker.instants import iso_z
from tracker.model import Failure, Fetched, Observation, Parsed, PayloadError, decode_json, utc
from tracker.sanity import Rejection, check_count

PLATFORM = "tumblr"
TAGGED = "tagged"
BLOG_INFO = "blog_info"
PAGE_SIZE = 20
"""The most `/v2/tagged` returns per call."""
EARLIEST_POST = 1_167_609_600
"""2007-01-01 00:00 UTC: Tumblr opened in February 2007, so an older post time is a lie
(and, taken as the oldest post, would mark years of days as measured zeros)."""
KEY_HELP = (
    "check TUMBLR_API_KEY (the OAuth consumer key of an app at https://www.tumblr.com/oauth/apps)"
)


def tag_target(tag: str) -> str:
    return f"tag:{tag}"


def blog_target(blog: str) -> str:
    return f"blog:{blog.lower()}"


def epoch(day: date) -> int:
    """00:00 UTC of a day, in Unix seconds."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


class TumblrError(Exception):
    """A response that holds no usable answer; `failure` says why, in the fetch log's words."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.detail)
        self.failure = failure


def _status_failure(status: int, what: str, record: Fetched) -> Failure:
    if status == 401:
        return Failure("auth", f"{what}: Tumblr refused the API key (HTTP 401); {KEY_HELP}")
    if status == 404:
        return Failure("not_found", f"{what}: Tumblr knows no such blog or resource (HTTP 404)")
    if status == 429:
        tries = f" after {record.attempts} tries" if record.attempts > 1 else ""
        return Failure(
            "rate_limited",
            f"{what}: HTTP 429 Limit Exceeded{tries} "
            "(Tumblr allows 1,000 calls an hour and 5,000 a day per API key)",
        )
    if status == 403:
        return Failure("forbidden", f"{what}: HTTP 403 (a private or dashboard-only blog?)")
    if record.error_kind and record.status == status:
        return Failure(record.error_kind, f"{what}: {record.error_detail}")
    return Failure(f"http_{status}", f"{what}: Tumblr answered with status {status}")


def _meta_status(document: Any) -> int | None:
    meta = document.get("meta") if isinstance(document, dict) else None
    status = meta.get("status") if isinstance(meta, dict) else None
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    return status if isinstance(status, int) and not isinstance(status, bool) else None


def read_response(record: Fetched, what: str) -> Any:
    """The `response` of a successful envelope, or `TumblrError`."""
    if not record.ok:
        if record.status is not None:
            raise TumblrError(_status_failure(record.status, what, record))
        raise TumblrError(Failure(str(record.error_kind), f"{what}: {record.error_detail}"))
    try:
        document = decode_json(record)
    except PayloadError as exc:
        raise TumblrError(Failure(exc.kind, f"{what}: {exc.detail}")) from None
    if not isinstance(document, dict) or "response" not in document:
        raise TumblrError(Failure("bad_shape", f"{what}: not a Tumblr API envelope"))
    status = _meta_status(document)
    if status is not None and not 200 <= status < 300:
        raise TumblrError(_status_failure(status, what, record))
    return document["response"]


@dataclass
class Page:
    """One `/v2/tagged` answer: its posts as (id, timestamp), and what could not be used."""

    items: int = 0
    posts: list[tuple[str, int]] = field(default_factory=list)
    featured: bool = False
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def oldest(self) -> int | None:
        return min((timestamp for _, timestamp in self.posts), default=None)


def _post_id(post: dict[str, Any]) -> str:
    """`id_string` (ids are 64-bit), else `id`, else a digest of the post itself."""
    for key in ("id_string", "id"):
        value = post.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    text = json.dumps(post, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _is_featured(post: dict[str, Any]) -> bool:
    stamp = post.get("featured_timestamp")
    return isinstance(stamp, int) and not isinstance(stamp, bool) and stamp > 0


def read_page(record: Fetched) -> Page:
    """The posts of one page; raises `TumblrError` when the page is not a usable answer."""
    response = read_response(record, TAGGED)
    if not isinstance(response, list):
        raise TumblrError(Failure("bad_shape", f"{TAGGED}: `response` is not a list of posts"))
    page = Page(items=len(response))
    for post in response:
        if not isinstance(post, dict):
            page.rejections.append(Rejection("tagged_posts", repr(post)[:80], "not a post object"))
            continue
        page.featured = page.featured or _is_featured(post)
        post_id = _post_id(post)
        raw = post.get("timestamp")
        timestamp = check_count("tagged_posts", raw)
        if isinstance(timestamp, Rejection):
            reason = f"post {post_id} not counted: timestamp {timestamp.reason}"
            page.rejections.append(Rejection("tagged_posts", timestamp.raw, reason))
        elif not isinstance(timestamp, int):
            page.rejections.append(
                Rejection("tagged_posts", "null", f"post {post_id} not counted: no timestamp")
            )
        elif timestamp < EARLIEST_POST:
            page.rejections.append(
                Rejection(
                    "tagged_posts",
                    str(timestamp),
                    f"post {post_id} not counted: timestamp before Tumblr existed",
                )
            )
        else:
            page.posts.append((post_id, timestamp))
    return page


def query_before(url: str) -> int | None:
    values = parse_qs(urlsplit(url).query).get("before")
    if not values or not values[0].isdigit():
        return None
    return int(values[0])


@dataclass
class Walk:
    """What a run's pages of one tag prove: posts seen, and how far back they are complete."""

    start: int | None = None
    """`before` of the first page: nothing at or after it was asked for."""
    oldest: int | None = None
    exhausted: bool = False
    """An empty page: the tag has no older posts, so every earlier day is covered too."""
    pages: int = 0
    posts: dict[str, int] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)
    failure: Failure | None = None


def walk_pages(records: Sequence[Fetched]) -> Walk:
    """Follow the pages in fetch order while they form one unbroken backwards walk.

    A page continues the walk when it asked for posts before the oldest post seen
    so far (or one second later: the collector overlaps by a second so posts
    sharing the boundary second are not lost; duplicates are dropped by id).
    The walk ends at the first failed, unusable or out-of-sequence page.
    """
    walk = Walk()
    for index, record in enumerate(records):
        before = query_before(record.url)
        if index == 0:
            walk.start = before
        elif before is None or walk.oldest is None or not walk.oldest <= before <= walk.oldest + 1:
            walk.failure = Failure(
                "bad_paging",
                f"{TAGGED}: page {index + 1} does not continue from the oldest post so far",
            )
            break
        where = f"page {index + 1}"
        try:
            page = read_page(record)
        except TumblrError as exc:
            walk.failure = Failure(exc.failure.kind, f"{where}: {exc.failure.detail}")
            break
        # Pages overlap by a second, so one bad post may be read twice: say it once.
        walk.rejections.extend(r for r in page.rejections if r not in walk.rejections)
        if page.featured:
            walk.failure = Failure(
                "featured_tag",
                f"{TAGGED}: Tumblr serves this tag as a curated featured feed (posts carry "
                "featured_timestamp), not as a time-ordered list, so posts per day cannot be "
                "counted",
            )
            break
        if page.items == 0:
            walk.pages += 1
            walk.exhausted = True
            break
        page_oldest = page.oldest
        if page_oldest is None:
            walk.failure = Failure(
                "bad_shape", f"{TAGGED}: {where}: none of its posts has a usable timestamp"
            )
            break
        walk.pages += 1
        for post_id, timestamp in page.posts:
            walk.posts.setdefault(post_id, timestamp)
        walk.oldest = page_oldest if walk.oldest is None else min(walk.oldest, page_oldest)
    return walk


def covered_days(walk: Walk, today: date, days: int) -> list[date]:
    """The days of the window `[today - days, today)` the walk saw completely."""
    covered = []
    for offset in range(days, 0, -1):
        day = today - timedelta(days=offset)
        if walk.start is not None and epoch(day + timedelta(days=1)) > walk.start:
            continue
        if walk.exhausted or (walk.oldest is not None and walk.oldest < epoch(day)):
            covered.append(day)
    return covered


def parse(
    target: str, records: Sequence[Fetched], observed_at: datetime, *, days: int, max_pages: int
) -> Parsed:
    """A tag's walk (`tag:` targets) or a blog's info, told apart by the target's key."""
    if target.startswith("tag:"):
        return parse_tagged(target, records, observed_at, days=days, max_pages=max_pages)
    return parse_blog_info(target, records, observed_at)


def parse_tagged(
    target: str, records: Sequence[Fetched], observed_at: datetime, *, days: int, max_pages: int
) -> Parsed:
    """Posts per UTC day for every complete, fully covered day of the last `days` days."""
    pages = [record for record in records if record.kind == TAGGED]
    today = utc(observed_at).date()
    if not pages:
        return Parsed(
            failure=Failure(
                "not_due",
                f"every complete day up to {today - timedelta(days=1)} is already stored; "
                f"{today} is counted once it ends (00:00 UTC)",
            )
        )
    walk = walk_pages(pages)
    parsed = Parsed(rejections=list(walk.rejections))
    covered = covered_days(walk, today, days)
    per_day = Counter(
        datetime.fromtimestamp(timestamp, UTC).date() for timestamp in walk.posts.values()
    )
    for day in covered:
        value = check_count("tagged_posts", per_day.get(day, 0))
        if isinstance(value, Rejection):
            parsed.rejections.append(value)
        elif isinstance(value, int):
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            parsed.observations.append(
                Observation(PLATFORM, target, "tagged_posts", value, moment, period="day")
            )
    if parsed.observations:
        parsed.platform = PLATFORM
    capped = walk.failure is None and not walk.exhausted and walk.pages >= max_pages
    if walk.failure is not None:
        # Fully covered days are kept even so: they are complete whatever came after.
        parsed.failure = walk.failure
    elif not covered:
        reached = _when(walk.oldest)
        if capped:
            parsed.failure = Failure(
                "page_cap",
                f"{walk.pages} pages ({walk.pages * PAGE_SIZE} posts) reached back only to "
                f"{reached}: no complete day; raise collectors.tumblr.max_pages",
            )
        else:
            parsed.failure = Failure(
                "incomplete", f"the pages reached back only to {reached}: no complete day"
            )
    elif capped and covered[0] > today - timedelta(days=days):
        parsed.rejections.append(
            Rejection(
                "tagged_posts",
                f"days before {covered[0]}",
                f"not counted: the page cap (max_pages={max_pages}) stopped the pages at "
                f"{_when(walk.oldest)}",
            )
        )
    return parsed


def _when(timestamp: int | None) -> str:
    if timestamp is None:
        return "no post"
    return iso_z(datetime.fromtimestamp(timestamp, UTC), sep=" ")


def parse_blog_info(target: str, records: Sequence[Fetched], observed_at: datetime) -> Parsed:
    """`response.blog.posts` (or `total_posts`): the blog's post count at this instant."""
    record = next((r for r in reversed(records) if r.kind == BLOG_INFO), None)
    if record is None:
        return Parsed(failure=Failure("no_answer", f"{BLOG_INFO}: no response was recorded"))
    try:
        response = read_response(record, BLOG_INFO)
    except TumblrError as exc:
        return Parsed(failure=exc.failure)
    blog = response.get("blog") if isinstance(response, dict) else None
    if not isinstance(blog, dict):
        return Parsed(failure=Failure("bad_shape", f"{BLOG_INFO}: no `response.blog` object"))
    raw = blog.get("posts")
    if raw is None:
        raw = blog.get("total_posts")
    value = check_count("posts_total", raw)
    if isinstance(value, Rejection):
        return Parsed(
            rejections=[value],
            failure=Failure("bad_value", f"{BLOG_INFO}: posts_total {value.reason}"),
        )
    if not isinstance(value, int):
        return Parsed(
            failure=Failure("bad_shape", f"{BLOG_INFO}: the blog has neither posts nor total_posts")
        )
    return Parsed(
        observations=[Observation(PLATFORM, target, "posts_total", value, utc(observed_at))],
        platform=PLATFORM,
    )
