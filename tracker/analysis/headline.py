"""The report's answer first: how many accounts each platform gained after each event.

Everything is measured on one source's network total at a time (sources count
different things and are never added together), on the same coverage-neutral
level as every other growth figure (`tracker.analysis.totals`: servers joining a
crawl, re-index steps and counters falling and climbing back are not growth).

Definitions, for an event on day E with `before` (28) and `after` (14) days:

- **Window**: the `after` UTC days E .. E+after-1. A window day is *covered* when at
  least one target of the total has a reading that day (carried values do not count).
- **Observed**: accounts gained from the last daily level before E (within the
  `before` days) to the level on the last covered day of the window. When the data
  stops inside the window (a record that ends, a collector that stopped), the gain
  is over the covered days only, and says so: it is never scaled up to 14 days.
- **Expected**: the baseline trend, the least-squares slope per day of the daily
  level over the `before` days before E (at least half of them with data), times
  the days the observed gain spans. So both figures cover the same days.
- **Ratio**: observed / expected, only when the trend is growing (expected > 0).
- **Sign-ups** (per-period series: the PLC directory's new identities per day,
  Mastodon's weekly registrations spread evenly over their days): observed is the
  sum over the covered window days, expected the mean per day over the baseline
  days with data times the covered days.
- **Share**: for each platform the one measure with the most covered window days
  (then account totals before sign-ups, then the larger gain: the widest view), and
  its share of the gains of all platforms with a positive gain. Platforms are
  disjoint, so this sum counts nobody twice; it says so when only one platform has
  data.
- **Largest week**: the ISO weeks overlapping the window are the event's weeks;
  the largest weekly gain among them (stale weeks left out) is compared with the
  largest of every other week of the same source's record.
- **Retention**: for a source with both accounts and monthly active users (e.g. the
  official joinmastodon.org statistics), MAU / accounts on the last day before the
  event and `RETENTION_DAYS` later (or the source's last day with both, if it is at
  least `MIN_LATER_DAYS` after the event): accounts never shrink, so a falling share
  means the new accounts did not stay active.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tracker.analysis.conventions import ACCOUNT_METRICS, ACTIVE_METRICS, day_number
from tracker.analysis.events import Days, Values, spread_weeks, waves
from tracker.analysis.pipeline import Analysis
from tracker.analysis.totals import GROUP
from tracker.config import AnalysisSettings
from tracker.model import Event

ACCOUNTS = ACCOUNT_METRICS[0]
ACTIVE = ACTIVE_METRICS[0]
SIGNUP_METRICS = ("accounts_created", "registrations")
"""Per-period counts of new accounts: PLC identities per day, Mastodon sign-ups per week."""
RETENTION_DAYS = 182
"""About six months: "months later", when the wave's new accounts had settled."""
MIN_LATER_DAYS = 60
"""A source whose data ends sooner than this after the event says nothing about staying."""


@dataclass(frozen=True)
class Gain:
    """One source's view of one platform around one event (see the module docstring)."""

    source: str
    platform: str
    metric: str
    kind: str  # "accounts" (a total's growth) or "sign-ups" (per-period counts)
    observed: float | None
    expected: float | None
    ratio: float | None
    start_day: int | None  # the level before the event the gain counts from
    end_day: int | None  # the last covered window day
    days_covered: int
    window_days: int
    baseline_days: int  # days before the event with data (the trend needs half)
    record_first: int  # the whole record of this total, for "the record ends on ..."
    record_last: int
    targets: int  # most targets reporting on a window day (1 for a single series)
    level: float | None  # the total's value on the last covered day (the widest view wins)

    @property
    def status(self) -> str:
        """measured; ended_before (data only before the event); started_after (no
        reading before it to count from); no_trend (too few days before for a trend)."""
        if self.days_covered == 0:
            return "ended_before"
        if self.start_day is None:
            return "started_after"
        return "measured" if self.expected is not None else "no_trend"


@dataclass(frozen=True)
class WeekComparison:
    """The event's largest weekly gain against every other week of the same record."""

    source: str
    platform: str
    event_week: int
    event_gain: float
    other_week: int | None
    other_gain: float | None
    first_week: int
    last_week: int
    weeks: int  # weeks of the record with a usable gain
    in_wave: bool  # the event's week is part of a wave by the report's rule

    @property
    def largest(self) -> bool:
        return self.other_gain is None or self.event_gain > self.other_gain


@dataclass(frozen=True)
class Share:
    platform: str
    source: str
    kind: str
    gained: float
    share: float
    days_covered: int


@dataclass(frozen=True)
class Retention:
    source: str
    platform: str
    before_day: int
    before_accounts: float
    before_active: float
    later_day: int | None
    later_accounts: float | None
    later_active: float | None


@dataclass
class EventHeadline:
    event: Event
    day: int
    before: int
    after: int
    gains: list[Gain] = field(default_factory=list)
    weeks: list[WeekComparison] = field(default_factory=list)
    shares: list[Share] = field(default_factory=list)
    retention: list[Retention] = field(default_factory=list)

    @property
    def measured(self) -> list[Gain]:
        return [gain for gain in self.gains if gain.observed is not None]


def headline(
    analysis: Analysis, events: Sequence[Event], settings: AnalysisSettings
) -> list[EventHeadline]:
    """One `EventHeadline` per event, in the order of `events`."""
    before, after = settings.event_window_before, settings.event_window_after
    totals = _account_totals(analysis)
    flows = list(_signup_flows(analysis))
    found = []
    for event in events:
        day = day_number(event.date)
        result = EventHeadline(event, day, before, after)
        for (source, platform), group in totals:
            gain = _account_gain(source, platform, group, day, before, after)
            if gain is not None:
                result.gains.append(gain)
            week = _week_comparison(analysis, source, platform, day, after, settings)
            if week is not None:
                result.weeks.append(week)
        for source, platform, metric, days, values, targets in flows:
            gain = _signup_gain(source, platform, metric, days, values, targets, day, before, after)
            if gain is not None:
                result.gains.append(gain)
        result.gains.sort(key=_gain_order)
        result.shares = shares(result.measured)
        result.retention = retention(analysis, day)
        found.append(result)
    return found


def _gain_order(gain: Gain) -> tuple[str, int, float, str]:
    observed = gain.observed if gain.observed is not None else -np.inf
    return (gain.platform, 0 if gain.kind == "accounts" else 1, -observed, gain.source)


def _account_totals(analysis: Analysis) -> list[tuple[tuple[str, str], pd.DataFrame]]:
    totals = analysis.totals
    if totals.empty:
        return []
    chosen = totals[totals["metric"] == ACCOUNTS]
    return [
        ((str(key[0]), str(key[1])), group.sort_values("day"))
        for key, group in chosen.groupby(["source", "platform"], sort=True)
    ]


def _account_gain(
    source: str, platform: str, group: pd.DataFrame, event: int, before: int, after: int
) -> Gain | None:
    days = group["day"].to_numpy(dtype=np.int64)
    level = group["change"].fillna(0).cumsum().to_numpy(dtype=np.float64)
    reporting = group["reporting"].to_numpy(dtype=np.int64) > 0
    base = (days >= event - before) & (days < event) & reporting
    post = (days >= event) & (days < event + after) & reporting
    if not base.any() and not post.any():
        return None  # this record says nothing about this event
    start = int(days[base].max()) if base.any() else None
    end = int(days[post].max()) if post.any() else None
    observed = expected = ratio = None
    if start is not None and end is not None:
        observed = float(level[days == end][0] - level[days == start][0])
        if int(base.sum()) >= max(2, before // 2):
            slope = float(np.polyfit(days[base].astype(np.float64), level[base], 1)[0])
            expected = slope * (end - start)
            ratio = observed / expected if expected > 0 else None
    values = group["value"].to_numpy(dtype=np.float64)
    return Gain(
        source=source,
        platform=platform,
        metric=ACCOUNTS,
        kind="accounts",
        observed=observed,
        expected=expected,
        ratio=ratio,
        start_day=start,
        end_day=end,
        days_covered=int(post.sum()),
        window_days=after,
        baseline_days=int(base.sum()),
        record_first=int(days.min()),
        record_last=int(days.max()),
        targets=int(group["reporting"].to_numpy()[post].max()) if post.any() else 0,
        level=float(values[days == end][0]) if end is not None else None,
    )


def _signup_flows(analysis: Analysis) -> Iterator[tuple[str, str, str, Days, Values, int]]:
    """(source, platform, metric, days, daily sums over targets, targets) of sign-up counts."""
    daily = analysis.period_daily
    if daily.empty:
        return
    named = daily.join(analysis.series[[*GROUP, "period"]], on="series_id")
    named = named[named["metric"].isin(SIGNUP_METRICS)]
    for (source, platform, metric), group in named.groupby(GROUP, sort=True):
        parts = []
        for _, one in group.groupby("series_id", sort=True):
            days = one["day"].to_numpy(dtype=np.int64)
            values = one["value"].to_numpy(dtype=np.float64)
            if str(one["period"].iloc[0]) == "week":
                days, values = spread_weeks(days, values)
            parts.append(pd.Series(values, index=days))
        summed = pd.concat(parts).groupby(level=0).sum().sort_index()
        yield (
            str(source),
            str(platform),
            str(metric),
            summed.index.to_numpy(dtype=np.int64),
            summed.to_numpy(dtype=np.float64),
            int(group["series_id"].nunique()),
        )


def _signup_gain(
    source: str,
    platform: str,
    metric: str,
    days: Days,
    values: Values,
    targets: int,
    event: int,
    before: int,
    after: int,
) -> Gain | None:
    base = (days >= event - before) & (days < event)
    post = (days >= event) & (days < event + after)
    if not base.any() and not post.any():
        return None
    covered = int(post.sum())
    observed = float(values[post].sum()) if covered else None
    expected = ratio = None
    if observed is not None and int(base.sum()) >= max(1, before // 2):
        expected = float(values[base].mean()) * covered
        ratio = observed / expected if expected > 0 else None
    return Gain(
        source=source,
        platform=platform,
        metric=metric,
        kind="sign-ups",
        observed=observed,
        expected=expected,
        ratio=ratio,
        start_day=event - 1 if base.any() else None,
        end_day=int(days[post].max()) if covered else None,
        days_covered=covered,
        window_days=after,
        baseline_days=int(base.sum()),
        record_first=int(days.min()),
        record_last=int(days.max()),
        targets=targets,
        level=observed,
    )


def _week_comparison(
    analysis: Analysis,
    source: str,
    platform: str,
    event: int,
    after: int,
    settings: AnalysisSettings,
) -> WeekComparison | None:
    weekly = analysis.weekly_totals
    if weekly.empty:
        return None
    chosen = weekly[
        (weekly["source"] == source)
        & (weekly["platform"] == platform)
        & (weekly["metric"] == ACCOUNTS)
    ].sort_values("week")
    week = chosen["week"].to_numpy(dtype=np.int64)
    change = chosen["change"].to_numpy(dtype=np.float64)
    stale = chosen["stale"].to_numpy(dtype=bool)
    usable = np.isfinite(change) & ~stale
    touching = (week + 6 >= event) & (week <= event + after - 1)
    mine, others = usable & touching, usable & ~touching
    if not mine.any():
        return None
    at = int(np.flatnonzero(mine)[np.argmax(change[mine])])
    other_week = other_gain = None
    if others.any():
        best = int(np.flatnonzero(others)[np.argmax(change[others])])
        other_week, other_gain = int(week[best]), float(change[best])
    found = waves(
        week,
        change,
        k=settings.wave_factor,
        trailing=settings.wave_trailing_weeks,
        ignore=stale,
        levels=chosen["value"].to_numpy(dtype=np.float64),
    )
    in_wave = any(wave.start <= week[at] <= wave.end for wave in found)
    return WeekComparison(
        source=source,
        platform=platform,
        event_week=int(week[at]),
        event_gain=float(change[at]),
        other_week=other_week,
        other_gain=other_gain,
        first_week=int(week[usable].min()),
        last_week=int(week[usable].max()),
        weeks=int(usable.sum()),
        in_wave=in_wave,
    )


def shares(gains: Sequence[Gain]) -> list[Share]:
    """Each platform's share of the accounts gained (see the module docstring), largest first."""
    best: dict[str, Gain] = {}
    for gain in gains:
        if gain.observed is None:
            continue
        current = best.get(gain.platform)
        if current is None or _rank(gain) > _rank(current):
            best[gain.platform] = gain
    positive = {platform: g for platform, g in best.items() if (g.observed or 0) > 0}
    total = sum(g.observed or 0.0 for g in positive.values())
    if total <= 0:
        return []
    found = [
        Share(
            platform,
            g.source,
            g.kind,
            g.observed or 0.0,
            (g.observed or 0.0) / total,
            g.days_covered,
        )
        for platform, g in positive.items()
    ]
    return sorted(found, key=lambda share: (-share.gained, share.platform))


def _rank(gain: Gain) -> tuple[int, int, float, float]:
    return (
        gain.days_covered,
        1 if gain.kind == "accounts" else 0,
        gain.level or 0.0,
        gain.observed or 0.0,
    )


def retention(analysis: Analysis, event: int) -> list[Retention]:
    """MAU / accounts before the event and months later, per source that has both."""
    totals = analysis.totals
    if totals.empty:
        return []
    both = totals[totals["metric"].isin([ACCOUNTS, ACTIVE]) & (totals["reporting"] > 0)]
    found = []
    for (source, platform), group in both.groupby(["source", "platform"], sort=True):
        wide = group.pivot_table(index="day", columns="metric", values="value", aggfunc="last")
        counts = group.pivot_table(
            index="day", columns="metric", values="reporting", aggfunc="last"
        )
        if ACCOUNTS not in wide.columns or ACTIVE not in wide.columns:
            continue
        # Only days on which both totals sum the same targets: a server that publishes
        # accounts but no active users would otherwise pass for dormant accounts.
        same = counts[ACCOUNTS] == counts[ACTIVE]
        wide = wide[same.reindex(wide.index, fill_value=False)]
        wide = wide.dropna(subset=[ACCOUNTS, ACTIVE])
        wide = wide[wide[ACCOUNTS] > 0]
        days = wide.index.to_numpy(dtype=np.int64)
        earlier = days[days < event]
        if earlier.size == 0:
            continue
        start = int(earlier.max())
        later_days = days[days >= event + MIN_LATER_DAYS]
        chosen = later_days[later_days >= event + RETENTION_DAYS]
        later = (
            int(chosen.min())
            if chosen.size
            else (int(later_days.max()) if later_days.size else None)
        )
        accounts = dict(zip(days.tolist(), wide[ACCOUNTS].to_numpy(dtype=np.float64), strict=True))
        active = dict(zip(days.tolist(), wide[ACTIVE].to_numpy(dtype=np.float64), strict=True))
        found.append(
            Retention(
                source=str(source),
                platform=str(platform),
                before_day=start,
                before_accounts=float(accounts[start]),
                before_active=float(active[start]),
                later_day=later,
                later_accounts=None if later is None else float(accounts[later]),
                later_active=None if later is None else float(active[later]),
            )
        )
    return found
