"""`summary.json`'s `headline` and the page's opening: the answer before the charts.

The figures come from `tracker.analysis.headline` (definitions there); this module
puts them into the contract and into plain sentences, each naming its source and
its coverage in words, because a number without them reads as more than it is.

```json
"headline": {
  "text": ["Mastodon gained 440,461 accounts in the 12 days after ...", "..."],
  "events": [{
    "date": "2022-10-27", "label": "Musk takes over Twitter",
    "window": {"first_day": "2022-10-27", "last_day": "2022-11-09", "days": 14},
    "baseline": {"first_day": "2022-09-29", "last_day": "2022-10-26", "days": 28},
    "gains": [{"source": "mastodonusercount", "platform": "mastodon", "metric": "users_total",
               "kind": "accounts", "status": "measured", "observed": 440461,
               "expected": 18000, "ratio": 24.4, "from": "2022-10-26", "to": "2022-11-07",
               "days_covered": 12, "window_days": 14, "baseline_days": 28, "targets": 1,
               "record": {"first_day": "2018-08-11", "last_day": "2022-11-07"},
               "source_text": "the @mastodonusercount bot's hourly crawl of ...",
               "coverage_text": "12 of 14 days covered (the record ends on 2022-11-07)"}],
    "largest_week": [{"source": "mastodonusercount", "platform": "mastodon",
                      "event_week": {"week": "2022-10-31", "value": 301008},
                      "other_week": {"week": "2022-04-25", "value": 100157},
                      "largest": true, "in_wave": true,
                      "record": {"first_week": "2018-08-13", "last_week": "2022-11-07",
                                 "weeks": 221}}],
    "shares": {"single_platform": true, "platforms": [{"platform": "mastodon",
               "source": "mastodonusercount", "kind": "accounts", "gained": 440461,
               "share": 1.0, "days_covered": 12}]},
    "retention": [{"source": "joinmastodon", "platform": "mastodon", "days_later": 182,
                   "before": {"date": "2022-10-26", "accounts": 3605039, "active": 470403,
                              "share": 0.13},
                   "later": {"date": "...", "accounts": 0, "active": 0, "share": 0.0}}],
    "text": ["..."]}]}
```

The first key of `summary.json` (an added key of the contract). `text` at the top
is what the page opens with: the first event with any measured gain (normally the
takeover), or a sentence saying there is nothing to measure yet. `status` of a gain:
`measured`, `no_trend` (observed, but too few days before the event for a trend),
`started_after` (no reading before the event to count from) or `ended_before`
(data only before the event); figures that cannot be computed are `null`.
`kind` `sign-ups` rows are per-period counts (PLC new identities per day, Mastodon
weekly registrations), not the growth of a total. Shares are over the platforms
with a positive gain, one measure per platform; `single_platform` says that only
one platform had data, so the share says nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tracker.analysis.conventions import day_date
from tracker.analysis.headline import (
    EventHeadline,
    Gain,
    Retention,
    Share,
    WeekComparison,
    headline,
)
from tracker.analysis.pipeline import Analysis
from tracker.catalogue import facts_of, platform_name
from tracker.config import AnalysisSettings
from tracker.model import Event

MEASURE = {"accounts_created": "new identities", "registrations": "sign-ups"}


@dataclass(frozen=True)
class Table:
    """The page's small table under the sentences: a header and rows of text cells."""

    header: tuple[str, ...]
    rows: list[tuple[str, ...]]
    numeric: frozenset[int] = frozenset()


def headline_entry(
    analysis: Analysis, events: Sequence[Event], settings: AnalysisSettings
) -> dict[str, Any]:
    """The `headline` object of `summary.json` (see the module docstring)."""
    found = headline(analysis, events, settings)
    entries = [_event_entry(item, analysis) for item in found]
    lead = next((entry for entry in entries if _has_gain(entry)), None)
    if lead is None:
        text = [_nothing_yet(analysis, events)]
    else:
        text = list(lead["text"])
        if entries[0] is not lead:  # the takeover comes first: say it is not covered
            text.insert(0, f"No account counts cover {_event_name(entries[0])}.")
    return {"text": text, "events": entries}


def _has_gain(entry: dict[str, Any]) -> bool:
    return any(gain["observed"] is not None for gain in entry["gains"])


def _nothing_yet(analysis: Analysis, events: Sequence[Event]) -> str:
    where = "holds no observations yet" if analysis.empty else "has no account counts"
    return (
        f"Nothing to answer yet: the database {where} around any of the {len(events)} "
        "events, so it cannot say where people went. Run `tracker collect` on a schedule, "
        "or import history (`tracker import FILE`), then `tracker report` again."
    )


def _event_entry(item: EventHeadline, analysis: Analysis) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "date": item.event.date.isoformat(),
        "label": item.event.label,
        "window": _span(item.day, item.day + item.after - 1),
        "baseline": _span(item.day - item.before, item.day - 1),
        "gains": [_gain_entry(gain, analysis) for gain in item.gains],
        "largest_week": [_week_entry(week) for week in item.weeks],
        "shares": {
            "single_platform": len(item.shares) == 1,
            "platforms": [_share_entry(share) for share in item.shares],
        },
        "retention": [_retention_entry(one, item.day) for one in item.retention],
    }
    entry["text"] = _sentences(item, entry)
    return entry


def _iso(day: int | None) -> str | None:
    return None if day is None else day_date(day).isoformat()


def _span(first: int, last: int) -> dict[str, Any]:
    return {"first_day": _iso(first), "last_day": _iso(last), "days": last - first + 1}


def _round(value: float | None, digits: int = 0) -> Any:
    if value is None:
        return None
    return round(value) if digits == 0 else round(value, digits)


def _gain_entry(gain: Gain, analysis: Analysis) -> dict[str, Any]:
    return {
        "source": gain.source,
        "platform": gain.platform,
        "metric": gain.metric,
        "kind": gain.kind,
        "status": gain.status,
        "observed": _round(gain.observed),
        "expected": _round(gain.expected),
        "ratio": _round(gain.ratio, 2),
        "from": _iso(gain.start_day),
        "to": _iso(gain.end_day),
        "days_covered": gain.days_covered,
        "window_days": gain.window_days,
        "baseline_days": gain.baseline_days,
        "targets": gain.targets,
        "record": {"first_day": _iso(gain.record_first), "last_day": _iso(gain.record_last)},
        "source_text": source_text(gain, analysis),
        "coverage_text": coverage_text(gain),
    }


def _week_entry(week: WeekComparison) -> dict[str, Any]:
    other = None
    if week.other_week is not None and week.other_gain is not None:
        other = {"week": _iso(week.other_week), "value": round(week.other_gain)}
    return {
        "source": week.source,
        "platform": week.platform,
        "event_week": {"week": _iso(week.event_week), "value": round(week.event_gain)},
        "other_week": other,
        "largest": week.largest,
        "in_wave": week.in_wave,
        "record": {
            "first_week": _iso(week.first_week),
            "last_week": _iso(week.last_week),
            "weeks": week.weeks,
        },
    }


def _share_entry(share: Share) -> dict[str, Any]:
    return {
        "platform": share.platform,
        "source": share.source,
        "kind": share.kind,
        "gained": round(share.gained),
        "share": round(share.share, 3),
        "days_covered": share.days_covered,
    }


def _ratio(active: float | None, accounts: float | None) -> float | None:
    if active is None or accounts is None or accounts <= 0:
        return None
    return round(active / accounts, 3)


def _retention_entry(one: Retention, event: int) -> dict[str, Any]:
    later = None
    if one.later_day is not None:
        later = {
            "date": _iso(one.later_day),
            "accounts": _round(one.later_accounts),
            "active": _round(one.later_active),
            "share": _ratio(one.later_active, one.later_accounts),
        }
    return {
        "source": one.source,
        "platform": one.platform,
        "days_later": None if one.later_day is None else one.later_day - event,
        "before": {
            "date": _iso(one.before_day),
            "accounts": round(one.before_accounts),
            "active": round(one.before_active),
            "share": _ratio(one.before_active, one.before_accounts),
        },
        "later": later,
    }


def source_text(gain: Gain, analysis: Analysis) -> str:
    """Which count this is, in words: a number is only as good as what it counts."""
    relay = analysis.network_targets.get((gain.source, gain.platform, gain.metric))
    if gain.source == "fediverse":
        servers = f"{gain.targets:,} server{'s' if gain.targets != 1 else ''}"
        reported = "weekly sign-ups reported by" if gain.kind == "sign-ups" else "the"
        return f"{reported} {servers} listed in the config or found by `tracker crawl`"
    text = _source_text(gain.source, f"source {gain.source}")
    if relay is not None:
        text = f"{text} ({relay})"
    return text


def coverage_text(gain: Gain) -> str:
    """ "12 of 14 days covered (the record ends on 2022-11-07)", and why days are missing."""
    text = f"{gain.days_covered} of {gain.window_days} days covered"
    if gain.days_covered == 0:
        return f"no reading after the event (the record ends on {_iso(gain.record_last)})"
    if gain.start_day is None:
        return (
            f"{text}, no reading before the event (the record starts on {_iso(gain.record_first)})"
        )
    if gain.days_covered < gain.window_days:
        end = gain.end_day or 0
        if gain.record_last == end:
            return f"{text} (the record ends on {_iso(end)})"
        return f"{text} (days without a reading)"
    return text


def _event_name(entry: dict[str, Any]) -> str:
    return f"{entry['label']} ({entry['date']})"


def _source_text(source: str, default: str) -> str:
    """How a sentence names a source: the words its collector or archive declares."""
    facts = facts_of(source)
    return facts.sentence if facts is not None and facts.sentence else default


def _number(value: float) -> str:
    return f"{round(value):,}"


def _times(ratio: float) -> str:
    return f"{ratio:,.1f}" if ratio < 100 else f"{ratio:,.0f}"


def _leading(item: EventHeadline) -> list[Gain]:
    """One gain per platform, the measure its share uses (or its best-covered one)."""
    chosen = {share.platform: (share.source, share.kind) for share in item.shares}
    found: dict[str, Gain] = {}
    for gain in item.measured:
        key = chosen.get(gain.platform)
        if key is not None and (gain.source, gain.kind) != key:
            continue
        current = found.get(gain.platform)
        if current is None or (gain.days_covered, gain.level or 0) > (
            current.days_covered,
            current.level or 0,
        ):
            found[gain.platform] = gain
    return sorted(found.values(), key=lambda gain: -(gain.observed or 0))


def _sentences(item: EventHeadline, entry: dict[str, Any]) -> list[str]:
    name = f"{item.event.label} ({item.event.date.isoformat()})"
    gains = _leading(item)
    if not gains:
        return [f"No account counts cover {name}."]
    by_key = {(g["source"], g["platform"], g["metric"]): g for g in entry["gains"]}
    text = []
    for gain in gains:
        words = by_key[(gain.source, gain.platform, gain.metric)]
        text.append(_gain_sentence(gain, name, words))
        week = next(
            (w for w in item.weeks if (w.source, w.platform) == (gain.source, gain.platform)),
            None,
        )
        if week is not None and gain.kind == "accounts":
            text.append(_week_sentence(week, gain))
    shown = {(gain.source, gain.platform, gain.metric) for gain in gains}
    others = [g for g in item.measured if (g.source, g.platform, g.metric) not in shown]
    if others:
        text.append(_others_sentence(others))
    ended = [g for g in item.gains if g.status == "ended_before"]
    for gain in ended:
        text.append(
            f"{platform_name(gain.platform)} ({gain.source}): no reading after the event; "
            f"its record ends on {_iso(gain.record_last)}."
        )
    text.append(_share_sentence(item.shares))
    text += _retention_sentences(item)
    return text


def _gain_sentence(gain: Gain, name: str, words: dict[str, Any]) -> str:
    platform = platform_name(gain.platform)
    observed = gain.observed or 0.0
    if gain.kind == "sign-ups":
        what = f"{platform} had {_number(observed)} {MEASURE.get(gain.metric, gain.metric)}"
    else:
        verb = "gained" if observed >= 0 else "lost"
        what = f"{platform} {verb} {_number(abs(observed))} accounts"
    if gain.days_covered >= gain.window_days:
        days = f"in the {gain.window_days} days after {name}"
    else:
        days = (
            f"in the {gain.window_days} days after {name}, counted over the "
            f"{gain.days_covered} its data covers (to {_iso(gain.end_day)})"
        )
    if gain.ratio is not None and gain.expected is not None:
        trend = (
            f", {_times(gain.ratio)} times the trend before "
            f"({_number(gain.expected)} expected over the same days)"
        )
    elif gain.expected is not None:
        trend = f", against a flat or falling trend before ({_number(gain.expected)} expected)"
    else:
        trend = " (too few days before it to know the trend)"
    return f"{what} {days}{trend}. Source: {words['source_text']}; {words['coverage_text']}."


def _others_sentence(gains: Sequence[Gain]) -> str:
    """The other sources' counts, briefly: each tracker counts a different network."""
    parts = []
    for gain in gains:
        kind = "accounts" if gain.kind == "accounts" else MEASURE.get(gain.metric, gain.metric)
        ratio = "" if gain.ratio is None else f", {_times(gain.ratio)} times the trend"
        parts.append(
            f"{platform_name(gain.platform)} {kind} {gain.observed or 0:+,.0f} by {gain.source} "
            f"({gain.days_covered} of {gain.window_days} days{ratio})"
        )
    return "Other counts of the same days: " + "; ".join(parts) + "."


def _week_sentence(week: WeekComparison, gain: Gain) -> str:
    facts = facts_of(week.source)
    record = facts.record if facts is not None and facts.record else f"{week.source}'s record"
    span = (
        f"{record} ({day_date(week.first_week):%Y-%m}..{day_date(week.last_week):%Y-%m}, "
        f"{week.weeks:,} weeks)"
    )
    largest = f"week of {_iso(week.event_week)} ({week.event_gain:+,.0f} accounts)"
    wave = (
        " It is a wave by the report's rule (over 3 times the median of the weeks before)."
        if week.in_wave
        else ""
    )
    if week.other_gain is None or week.other_week is None:
        return f"Its largest week was the {largest}; {span} has no other week to compare.{wave}"
    other = f"week of {_iso(week.other_week)} ({week.other_gain:+,.0f})"
    if week.largest:
        times = (
            f"{_times(week.event_gain / week.other_gain)} times"
            if week.other_gain > 0
            else "more than"
        )
        return (
            f"Its {largest} was its largest weekly gain in {span}: {times} the largest "
            f"week outside the event's weeks, the {other}.{wave}"
        )
    return (
        f"Its largest week around the event, the {largest}, was not the largest in {span}: "
        f"the {other} gained {week.other_gain - week.event_gain:,.0f} more.{wave}"
    )


def _share_sentence(found: Sequence[Share]) -> str:
    if not found:
        return "No platform gained accounts in this window, so there is no share to give."
    if len(found) == 1:
        return (
            f"Only {platform_name(found[0].platform)} has counts for this window, so no share "
            "among the alternatives can be given."
        )
    parts = [
        f"{platform_name(share.platform)} {share.share:.0%} ({share.source})" for share in found
    ]
    uneven = len({share.days_covered for share in found}) > 1
    caveat = " (their data covers different numbers of days)" if uneven else ""
    return f"Of the accounts the platforms with data gained in those days{caveat}: " + (
        ", ".join(parts) + "."
    )


def _retention_sentences(item: EventHeadline) -> list[str]:
    text = []
    for one in item.retention:
        platform = platform_name(one.platform)
        source = _source_text(one.source, one.source)
        before = one.before_active / one.before_accounts
        sentence = (
            f"{platform} monthly active users per account ({source}): {before:.0%} on "
            f"{_iso(one.before_day)} ({_number(one.before_active)} of "
            f"{_number(one.before_accounts)})"
        )
        if one.later_day is None or one.later_accounts is None or one.later_active is None:
            sentence += "; no reading months later yet, so whether the new accounts stayed is open."
        else:
            later = one.later_active / one.later_accounts
            gained = one.later_accounts - one.before_accounts
            active = one.later_active - one.before_active
            sentence += (
                f", {later:.0%} on {_iso(one.later_day)}, {one.later_day - item.day} days later "
                f"({_number(one.later_active)} of {_number(one.later_accounts)}): accounts grew "
                f"by {_number(gained)}, monthly active users by {_number(active)}."
            )
        text.append(sentence)
    platforms = {gain.platform for gain in item.measured}
    if "mastodon" in platforms and not any(r.platform == "mastodon" for r in item.retention):
        text.append(
            "Whether Mastodon's new accounts stayed active cannot be told here: no source in "
            "the database counts both its accounts and its monthly active users (the official "
            "joinmastodon.org statistics do: `tracker collect --only joinmastodon`)."
        )
    return text


def table(entry: dict[str, Any]) -> Table:
    """Every measured gain of every event, one row each, for the page."""
    rows: list[tuple[str, ...]] = []
    for event in entry["events"]:
        for gain in event["gains"]:
            if gain["observed"] is None:
                continue
            kind = "accounts" if gain["kind"] == "accounts" else MEASURE.get(gain["metric"], "")
            rows.append(
                (
                    f"{event['label']} ({event['date']})",
                    f"{platform_name(gain['platform'])} {kind}",
                    f"{gain['observed']:+,}",
                    "" if gain["expected"] is None else f"{gain['expected']:+,}",
                    "" if gain["ratio"] is None else f"{gain['ratio']:,.1f}×",
                    f"{gain['source']}: {gain['source_text']}; {gain['coverage_text']}",
                )
            )
    header = ("event", "platform", "gained", "expected from the trend", "ratio", "source, coverage")
    return Table(header, rows, frozenset({2, 3, 4}))
