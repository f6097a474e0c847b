"""Pure parts of the `wikipedia` collector: article names, request paths, and the parser.

The Wikimedia pageviews API answers
`GET …/metrics/pageviews/per-article/{project}/all-access/user/{article}/daily/{start}/{end}`
with `{"items": [{"timestamp": "YYYYMMDDHH", "views": N, …}, …]}`, one item per day
that had views. A title it has no data for is not an empty list but a 404 whose
`detail` begins "The date(s) you used are valid": the same answer for "no such
article" and for "no views in these days yet". Which one it means depends on
whether anything was stored before; the fetch writes that into the request's kind
(`pageviews_backfill` or `pageviews_update`) so the parser stays a pure function
of the fetch log, as `tracker reparse` needs. The request URL carries the range.

Days without views are left out of the answer, not given as 0 (the API's
documented gotcha), so a small article's week would never look complete. A day
that was asked for and lies before the newest day in the answer has been
processed, so its absence means 0 views and it is stored as 0. Days after the
newest one may just not be loaded yet: they stay missing until a later answer
covers them. An answer with any rejected item fills nothing: its gaps are not
trusted to mean 0. The rule trusts the API to load days in order: a day loaded
after later ones, and later than the two days every run asks again, would keep
its 0 (not seen happen; moving `start` earlier fetches everything once more).

Titles are handled the way MediaWiki handles them (so one article is always one
target): NFC, spaces and underscores alike, runs collapsed, the ends trimmed, and
the first letter left as written. Pageviews are counted per exact title.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from tracker.model import Failure, Fetched, Observation, Parsed, PayloadError, decode_json
from tracker.sanity import Rejection, check_count

METRIC = "pageviews"
ACCESS = "all-access"
AGENT = "user"
GRANULARITY = "daily"
KIND_BACKFILL = "pageviews_backfill"
"""Nothing stored yet for the article: a no-data 404 means the title is unknown."""
KIND_UPDATE = "pageviews_update"
"""Days are stored already: a no-data 404 only means the new days are not loaded yet."""
KIND_NOT_DUE = "not_due"
"""Not a request: the fetch's note that it deliberately asked nothing this run."""
FIRST_DAY = date(2015, 7, 1)
"""The pageviews API has no data before this day."""
NO_DATA_PREFIX = "the date(s) you used are valid"

MAX_TITLE_BYTES = 255  # MediaWiki's limit on a page title, in UTF-8 bytes
_ILLEGAL = frozenset("#<>[]{}|")
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
# MediaWikiTitleCodec: these all count as one space, and directional marks are dropped.
_SPACES = re.compile("[ _\u00a0\u1680\u180e\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")
_DIRECTION_MARKS = re.compile("[\u200e\u200f\u202a-\u202e]")
_WIKI = re.compile(r"^[a-z][a-z0-9-]{0,30}\.wikipedia$")
_TIMESTAMP = re.compile(r"^([0-9]{8})([0-9]{2})?$")
_ENCODE_SAFE = "!'()*"  # what JavaScript's encodeURIComponent leaves as it is


def canonical_title(text: str) -> str:
    """The title as Wikipedia URLs and the API spell it (`Mastodon_(social_network)`).

    Raises ValueError with a reason fit for a config error.
    """
    title = unicodedata.normalize("NFC", text)
    if any(unicodedata.category(char) == "Cc" for char in title):
        raise ValueError("must not contain control characters (tabs, line breaks)")
    title = _SPACES.sub(" ", _DIRECTION_MARKS.sub("", title)).strip()
    if not title:
        raise ValueError("must not be empty")
    illegal = sorted({char for char in title if char in _ILLEGAL})
    if illegal:
        raise ValueError(
            f"contains {' '.join(illegal)}, which a Wikipedia title cannot contain "
            "(a # starts a section: give the article's title only)"
        )
    if _PERCENT_ESCAPE.search(title):
        raise ValueError(
            "looks percent-encoded (as copied from a URL): write the title as the "
            "article shows it, e.g. マストドン (ミニブログ)"
        )
    if len(title.encode("utf-8")) > MAX_TITLE_BYTES:
        raise ValueError(f"is longer than Wikipedia allows ({MAX_TITLE_BYTES} bytes in UTF-8)")
    return title.replace(" ", "_")


def canonical_wiki(text: str) -> str:
    """`en.wikipedia` from `en.wikipedia`, `EN.wikipedia.org`, `https://en.m.wikipedia.org/`."""
    host = text.strip().lower().removeprefix("https://").removeprefix("http://")
    host = host.rstrip("/").removesuffix(".org").replace(".m.wikipedia", ".wikipedia")
    if not _WIKI.match(host):
        raise ValueError("must name a Wikipedia, like en.wikipedia or ja.wikipedia.org")
    return host


def target_key(wiki: str, title: str) -> str:
    return f"{wiki}/{title}"


def split_key(key: str) -> tuple[str, str]:
    """The wiki and the title of a target key (a wiki never contains '/', a title may)."""
    wiki, _, title = key.partition("/")
    return wiki, title


def encode_title(title: str) -> str:
    """One URL path segment: UTF-8 percent-encoded, '/' and '?' and '%' included."""
    return quote(title, safe=_ENCODE_SAFE)


def request_path(wiki: str, title: str, first: date, last: date) -> str:
    """The daily per-article path; dates as YYYYMMDD, the form the API's own tests use."""
    return (
        f"/metrics/pageviews/per-article/{wiki}/{ACCESS}/{AGENT}/{encode_title(title)}"
        f"/{GRANULARITY}/{first:%Y%m%d}/{last:%Y%m%d}"
    )


def requested_range(url: str) -> tuple[date, date] | None:
    """The first and last day a logged request URL asked for, or None if it is not ours."""
    segments = urlsplit(url).path.rstrip("/").split("/")
    if len(segments) < 3:
        return None
    first, last = _day(unquote(segments[-2])), _day(unquote(segments[-1]))
    return (first, last) if first is not None and last is not None else None


def parse(
    target: str, records: Sequence[Fetched], observed_at: datetime, *, platform: str
) -> Parsed:
    """One article's fetch log into `pageviews` per day (period `day`, 00:00 UTC)."""
    parsed = Parsed(platform=platform)
    for record in records:
        if record.kind == KIND_NOT_DUE:
            parsed.failure = Failure("not_due", record.error_detail or "not due in this run")
            return parsed
    requests = [r for r in records if r.kind in (KIND_BACKFILL, KIND_UPDATE)]
    if not requests:
        # Only a fetch cancelled before its request was logged leaves no record.
        parsed.failure = Failure("deadline", "no request finished within the target's deadline")
        return parsed
    record = requests[-1]
    span = requested_range(record.url)
    if record.ok:
        try:
            _read_answer(parsed, target, decode_json(record), observed_at, span, record.kind)
        except PayloadError as exc:
            parsed.failure = Failure(exc.kind, f"{record.kind}: {exc.detail}")
        return parsed
    parsed.failure = _failure_of(record, span)
    return parsed


def _read_answer(
    parsed: Parsed,
    target: str,
    document: Any,
    observed_at: datetime,
    span: tuple[date, date] | None,
    kind: str,
) -> None:
    items = document.get("items") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise PayloadError("bad_shape", "the answer has no 'items' list")
    if not items:
        parsed.failure = _no_data(kind, span)
        return
    wiki, title = split_key(target)
    expected = {
        "project": wiki,
        "article": title,
        "granularity": GRANULARITY,
        "access": ACCESS,
        "agent": AGENT,
    }
    today = observed_at.astimezone(UTC).date()
    seen: set[date] = set()
    for item in items:
        day = _usable_day(parsed, item, expected, span, today)
        if day is None:
            continue
        if day in seen:
            parsed.rejections.append(
                Rejection(METRIC, str(item.get("views")), f"a second count for {day}")
            )
            continue
        views = check_count(METRIC, item.get("views"))
        if isinstance(views, Rejection):
            parsed.rejections.append(Rejection(METRIC, views.raw, f"{views.reason} on {day}"))
            continue
        if not isinstance(views, int):
            parsed.rejections.append(Rejection(METRIC, "(absent)", f"no views count on {day}"))
            continue
        seen.add(day)
        moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed.observations.append(
            Observation(parsed.platform or "", target, METRIC, views, moment, period="day")
        )
    if not parsed.observations:
        parsed.failure = Failure(
            "bad_shape", f"none of the {len(items)} days in the answer could be used"
        )
    elif span is not None and not parsed.rejections:
        _fill_days_without_views(parsed, target, max(span[0], FIRST_DAY), max(seen), seen)


def _fill_days_without_views(
    parsed: Parsed, target: str, first: date, newest: date, seen: set[date]
) -> None:
    """0 for each day from `first` to `newest` the answer left out (see the module docstring)."""
    day = first
    while day < newest:
        if day not in seen:
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            parsed.observations.append(
                Observation(parsed.platform or "", target, METRIC, 0, moment, period="day")
            )
        day += timedelta(days=1)
    parsed.observations.sort(key=lambda observation: observation.observed_at)


def _usable_day(
    parsed: Parsed,
    item: Any,
    expected: dict[str, str],
    span: tuple[date, date] | None,
    today: date,
) -> date | None:
    """The item's day if it belongs to what was asked for; else a rejection and None."""
    if not isinstance(item, dict):
        parsed.rejections.append(Rejection(METRIC, repr(item)[:80], "an item is not an object"))
        return None
    raw = item.get("timestamp")
    stamp = str(raw) if isinstance(raw, str | int) and not isinstance(raw, bool) else ""
    match = _TIMESTAMP.match(stamp)
    day = _day(match.group(1)) if match else None
    if match is None or day is None or (match.group(2) or "00") != "00":
        parsed.rejections.append(Rejection("timestamp", repr(raw)[:80], "not a daily timestamp"))
        return None
    for field, wanted in expected.items():
        given = item.get(field)
        if given is not None and _comparable(field, given) != wanted:
            reason = f"{field} is {str(given)[:60]!r}, not {wanted!r} as requested"
            parsed.rejections.append(Rejection(METRIC, str(item.get("views")), reason))
            return None
    if span is not None and not span[0] <= day <= span[1]:
        reason = f"{day} is outside the requested days {span[0]}..{span[1]}"
        parsed.rejections.append(Rejection("timestamp", stamp, reason))
        return None
    if day >= today:
        parsed.rejections.append(Rejection("timestamp", stamp, f"{day} has not ended yet"))
        return None
    return day


def _comparable(field: str, value: Any) -> str:
    text = str(value)
    if field == "project":
        return text.lower().removesuffix(".org")
    if field == "article":
        return unicodedata.normalize("NFC", text).replace(" ", "_")
    return text


def _failure_of(record: Fetched, span: tuple[date, date] | None) -> Failure | None:
    """Why a non-2xx answer gave nothing (None: nothing new, which is fine); in the
    API's own words when it sent a problem body."""
    problem = _problem_detail(record) if record.status in (400, 404) else None
    if record.status == 404 and problem and problem.lower().startswith(NO_DATA_PREFIX):
        return _no_data(record.kind, span)
    if problem is not None and (record.status == 400 or "invalid route" in problem.lower()):
        path = urlsplit(record.url).path
        return Failure(
            "bad_request",
            f"the API refused the request as malformed ({problem}): {path}; "
            "this is a bug, please report it",
        )
    detail = record.error_detail or f"HTTP {record.status}"
    if problem:
        detail += f": {problem}"
    return Failure(record.error_kind or f"http_{record.status}", f"{record.kind}: {detail}")


def _no_data(kind: str, span: tuple[date, date] | None) -> Failure | None:
    """After a backfill the title is unknown (or unread); after an update there is simply
    nothing new yet, which is not an error."""
    if kind != KIND_BACKFILL:
        return None
    since = span[0].isoformat() if span else "the configured start"
    return Failure("no_such_article", f"no such article (or no views since {since})")


def _problem_detail(record: Fetched) -> str | None:
    """`detail` (or `title`) of an RFC 7807 / HyperSwitch error body, whitespace tidied."""
    try:
        body = decode_json(record)
    except PayloadError:
        return None
    if not isinstance(body, dict):
        return None
    text = body.get("detail") or body.get("title")
    return " ".join(text.split())[:300] if isinstance(text, str) and text.strip() else None


def _day(text: str) -> date | None:
    """A day from `YYYYMMDD` or `YYYYMMDDHH` (ASCII digits only), else None."""
    if len(text) not in (8, 10) or not (text.isascii() and text.isdigit()):
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None
