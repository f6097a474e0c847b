"""Pure parsers for fediverse servers: NodeInfo, Mastodon, Misskey and Lemmy payloads.

No I/O here: each function takes decoded JSON (or the fetch log) and returns
numbers, so every quirk of the real payloads (see `../shared/payloads/README.md`)
is pinned by a unit test on a payload file, and `tracker reparse` can replay them.

Which source wins when two publish the same metric: NodeInfo first (every
software publishes it, with the same meaning), then the software's own API.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tracker.model import (
    Failure,
    Fetched,
    Observation,
    Parsed,
    PayloadError,
    decode_json,
)
from tracker.parsers.common import no_data_failure
from tracker.sanity import Rejection, check_count

NODEINFO_SCHEMA = re.compile(r"^https?://nodeinfo\.diaspora\.software/ns/schema/(\d+(?:\.\d+)?)$")

MASTODON_FAMILY = frozenset(
    {"mastodon", "hometown", "glitchsoc", "glitch-soc", "fedibird", "kmyblue", "ecko", "chuckya"}
)
MISSKEY_FAMILY = frozenset(
    {
        "misskey",
        "sharkey",
        "firefish",
        "calckey",
        "foundkey",
        "iceshrimp",
        "cherrypick",
        "meisskey",
        "catodon",
        "magnetar",
    }
)
PLEROMA_FAMILY = frozenset({"pleroma", "akkoma"})

# Kinds of fetch-log records this collector writes; parse reads them back by kind.
WELLKNOWN = "nodeinfo_links"
NODEINFO = "nodeinfo"
INSTANCE_V2 = "mastodon_instance_v2"
INSTANCE_V1 = "mastodon_instance_v1"
ACTIVITY = "mastodon_activity"
PEERS = "mastodon_peers"
MISSKEY_STATS = "misskey_stats"
LEMMY_SITE = "lemmy_site"
MISSKEY_INSTANCES = "misskey_instances"
LEMMY_INSTANCES = "lemmy_instances"
MISSKEY_PAGE = 100
"""The most `federation/instances` returns per request."""
MASTODON_PEERS_FAMILIES = frozenset({"mastodon", "pleroma"})
"""Families that serve `/api/v1/instance/peers` (Pleroma and Akkoma implement it too)."""

ACTIVITY_METRICS = {"registrations": "registrations", "logins": "logins", "statuses": "statuses"}


def platform_of(software: str) -> str:
    """The software family a server belongs to (forks count as their parent)."""
    name = software.strip().lower()
    if name in MASTODON_FAMILY:
        return "mastodon"
    if name in MISSKEY_FAMILY:
        return "misskey"
    if name in PLEROMA_FAMILY:
        return "pleroma"
    return re.sub(r"[^a-z0-9._-]+", "-", name)[:64] or "unknown"


def pick_nodeinfo_href(document: Any) -> str | None:
    """The href of the newest NodeInfo 2.x schema a `/.well-known/nodeinfo` lists.

    Accepts the standard `{"links": [...]}`, and the buggy old-Hubzilla shape where
    `links` is one object and more links hide under other top-level keys.
    """
    if not isinstance(document, dict):
        return None
    candidates: list[Any] = []
    links = document.get("links")
    if isinstance(links, list):
        candidates.extend(links)
    elif isinstance(links, dict):
        candidates.append(links)
    candidates.extend(value for key, value in document.items() if key != "links")
    best: tuple[float, str] | None = None
    for link in candidates:
        if not isinstance(link, dict):
            continue
        rel, href = link.get("rel"), link.get("href")
        if not isinstance(rel, str) or not isinstance(href, str) or not href.strip():
            continue
        match = NODEINFO_SCHEMA.match(rel.strip())
        if not match:
            continue
        version = float(match.group(1))
        if version >= 2.0 and (best is None or version > best[0]):
            best = (version, href.strip())
    return best[1] if best else None


@dataclass
class Counts:
    """Raw published numbers by metric, first source wins, then checked together."""

    raw: dict[str, Any] = field(default_factory=dict)

    def offer(self, metric: str, value: Any) -> None:
        if value is not None and metric not in self.raw:
            self.raw[metric] = value

    def checked(self, software: str | None) -> tuple[dict[str, int], list[Rejection]]:
        values: dict[str, int] = {}
        rejected: list[Rejection] = []
        for metric, raw in self.raw.items():
            result = check_count(metric, raw)
            if isinstance(result, Rejection):
                rejected.append(result)
            elif isinstance(result, int):
                values[metric] = result
        total = values.get("users_total")
        if total == 0:
            del values["users_total"]
            mode = " (GoToSocial instance-stats-mode zero)" if software == "gotosocial" else ""
            rejected.append(Rejection("users_total", "0", f"withheld: zero users{mode}"))
        elif total is not None:
            for metric in [m for m in values if m.startswith("users_active_")]:
                if values[metric] > total:
                    rejected.append(
                        Rejection(
                            metric,
                            str(values.pop(metric)),
                            f"more active users than users in total ({total})",
                        )
                    )
        return values, rejected


def read_nodeinfo(document: Any, counts: Counts) -> tuple[str | None, str | None]:
    """Offer a NodeInfo document's counters; returns (software name, version)."""
    if not isinstance(document, dict):
        raise PayloadError("bad_shape", "NodeInfo is not a JSON object")
    software = document.get("software")
    name = version = None
    if isinstance(software, dict):
        name = _text(software.get("name"))
        version = _text(software.get("version"))
    usage = document.get("usage")
    if not isinstance(usage, dict) or not name:
        raise PayloadError("bad_shape", "NodeInfo without software.name or usage")
    users = usage.get("users")
    if isinstance(users, dict):
        counts.offer("users_total", users.get("total"))
        counts.offer("users_active_month", users.get("activeMonth"))
        # GoToSocial spells it activeHalfYear.
        counts.offer("users_active_halfyear", _first(users, "activeHalfyear", "activeHalfYear"))
    counts.offer("posts_total", usage.get("localPosts"))
    counts.offer("comments_total", usage.get("localComments"))
    open_registrations = document.get("openRegistrations")
    if isinstance(open_registrations, bool):
        counts.offer("registrations_open", int(open_registrations))
    return name.lower(), version


def read_mastodon_instance(document: Any, counts: Counts) -> None:
    """`/api/v2/instance` (usage.users.active_month) or `/api/v1/instance` (stats)."""
    if not isinstance(document, dict):
        raise PayloadError("bad_shape", "instance is not a JSON object")
    usage = document.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("users"), dict):
        counts.offer("users_active_month", usage["users"].get("active_month"))
    stats = document.get("stats")
    if isinstance(stats, dict):
        counts.offer("users_total", stats.get("user_count"))
        counts.offer("posts_total", stats.get("status_count"))
    registrations = document.get("registrations")
    if isinstance(registrations, dict) and isinstance(registrations.get("enabled"), bool):
        counts.offer("registrations_open", int(registrations["enabled"]))
    elif isinstance(registrations, bool):
        counts.offer("registrations_open", int(registrations))


def read_misskey_stats(document: Any, counts: Counts) -> None:
    """`POST /api/stats`: the `original*` counts are local; the others include remote."""
    if not isinstance(document, dict):
        raise PayloadError("bad_shape", "stats is not a JSON object")
    counts.offer("users_total", document.get("originalUsersCount"))
    counts.offer("posts_total", document.get("originalNotesCount"))
    counts.offer("peers_total", document.get("instances"))


def read_lemmy_site(document: Any, counts: Counts) -> None:
    """`GET /api/v3/site`: `site_view.counts` (Lemmy 1.0 moved them to `local_site`)."""
    if not isinstance(document, dict) or not isinstance(document.get("site_view"), dict):
        raise PayloadError("bad_shape", "site without site_view")
    view = document["site_view"]
    stats = view.get("counts")
    if not isinstance(stats, dict):
        stats = view.get("local_site") if isinstance(view.get("local_site"), dict) else {}
    for metric, key in (
        ("users_total", "users"),
        ("posts_total", "posts"),
        ("comments_total", "comments"),
        ("users_active_day", "users_active_day"),
        ("users_active_week", "users_active_week"),
        ("users_active_month", "users_active_month"),
        ("users_active_halfyear", "users_active_half_year"),
    ):
        counts.offer(metric, stats.get(key))


def count_peers(document: Any) -> int:
    if not isinstance(document, list):
        raise PayloadError("bad_shape", "peers is not a JSON array")
    return len({peer for peer in document if isinstance(peer, str)})


def count_listed_peers(records: Sequence[Fetched]) -> int | None:
    """Distinct peers of a Misskey (all pages) or Lemmy (`linked`) peer list, if read whole."""
    listing = [r for r in records if r.kind in (MISSKEY_INSTANCES, LEMMY_INSTANCES)]
    if not listing or not all(record.ok for record in listing):
        return None  # a page missing: a count would be too low, so there is none
    names: set[str] = set()
    size = 0
    for record in listing:
        document = decode_json(record)
        if record.kind == LEMMY_INSTANCES:
            federated = document.get("federated_instances") if isinstance(document, dict) else None
            document = federated.get("linked") if isinstance(federated, dict) else None
            field = "domain"
        else:
            field = "host"
        if not isinstance(document, list):
            raise PayloadError("bad_shape", f"{record.kind} is not a list of servers")
        size = len(document)
        names.update(
            item[field]
            for item in document
            if isinstance(item, dict) and isinstance(item.get(field), str)
        )
    if listing[-1].kind == MISSKEY_INSTANCES and size >= MISSKEY_PAGE:
        return None  # paging stopped at its limit before the end
    return len(names)


_TRUE_TEXT = frozenset({"1", "true", "yes", "on"})


def _flag_set(value: Any) -> bool:
    """A flag as PHP software writes it: true, 1 or "1"/"true"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_TEXT
    return False


def privacy_opt_out(nodeinfo_document: Any) -> str | None:
    """Why a NodeInfo document asks not to be counted, or None.

    GNU social and Friendica (and Funkwhale) set `metadata.private` on a private
    node; Hubzilla has `hide_in_statistics`. Honoured whatever the software says
    it is: the flag is the admin's wish. Such a server is not measured at all.
    """
    if not isinstance(nodeinfo_document, dict):
        return None
    metadata = nodeinfo_document.get("metadata")
    if not isinstance(metadata, dict):
        return None
    if _flag_set(metadata.get("private")):
        return "NodeInfo metadata.private"
    if _flag_set(metadata.get("hide_in_statistics")):
        return "NodeInfo metadata.hide_in_statistics"
    return None


def opt_out_failure(records: Sequence[Fetched]) -> Failure | None:
    """410 on NodeInfo, or a NodeInfo privacy flag: the admin asked not to be counted."""
    for record in records:
        if record.kind in (WELLKNOWN, NODEINFO) and record.status == 410:
            return Failure("opted_out", f"{record.kind}: HTTP 410 Gone")
        if record.kind == NODEINFO and record.ok:
            try:
                reason = privacy_opt_out(decode_json(record))
            except PayloadError:
                continue
            if reason is not None:
                return Failure("opted_out", reason)
    return None


def iso_week_of_window(start: datetime) -> tuple[datetime, bool]:
    """The ISO week (its Monday 00:00 UTC) a 7-day window mostly covers, and whether
    the window is exactly that week.

    Current Mastodon computes buckets as `now - N weeks` for 7 days (not aligned to
    weeks; older versions used ISO weeks). The middle day of the window decides the
    week, so the 12 buckets of one response always land on 12 different weeks.
    """
    day = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    middle = day + timedelta(days=3)
    monday = middle - timedelta(days=middle.weekday())
    return monday, day == monday


WEEK = timedelta(days=7)
ANSWER_SLACK = timedelta(hours=1)
"""How long after our request began a server may date its answer (latency, its clock ahead)."""
FUTURE_SLACK = timedelta(days=1)
"""How far after the request a bucket may start before it is a bogus week."""


def read_activity(
    document: Any,
    platform: str,
    target: str,
    asked_at: datetime,
    *,
    platform_known: bool = True,
) -> tuple[list[Observation], list[Rejection]]:
    """Weekly buckets from `/api/v1/instance/activity`, all values strings.

    The current bucket is skipped: its window reaches into the future and holds
    only today's partial counts, a fake drop at the end of every weekly series.
    A bucket not aligned to its ISO week only fills a gap (`replace=False`), so a
    later exactly aligned bucket is the one that stays. A bucket that is not an
    object, has no readable `week`, or starts over a day after `asked_at` (when the request
    began, the fetch log's `fetched_at`) is rejected with its reason.
    """
    if not isinstance(document, list):
        raise PayloadError("bad_shape", "activity is not a JSON array")
    buckets, rejected = _activity_buckets(document, asked_at)
    buckets.sort(key=lambda item: item[0])
    if _newest_is_partial(buckets, unreadable=bool(rejected), asked_at=asked_at):
        buckets = buckets[:-1]
    observations: list[Observation] = []
    for week, bucket in buckets:
        monday, aligned = iso_week_of_window(datetime.fromtimestamp(week, UTC))
        for key, metric in ACTIVITY_METRICS.items():
            result = check_count(metric, bucket.get(key))
            if isinstance(result, Rejection):
                rejected.append(result)
            elif isinstance(result, int):
                observations.append(
                    Observation(
                        platform=platform,
                        target=target,
                        metric=metric,
                        value=result,
                        observed_at=monday,
                        period="week",
                        replace=aligned,
                        platform_known=platform_known,
                    )
                )
    return observations, rejected


def _activity_buckets(
    document: list[Any], asked_at: datetime
) -> tuple[list[tuple[int, Mapping[str, Any]]], list[Rejection]]:
    """The buckets whose week can be read, and a rejection for every other one
    (each is a week of numbers a person may want to know was dropped)."""
    buckets: list[tuple[int, Mapping[str, Any]]] = []
    rejected: list[Rejection] = []
    latest = (asked_at + FUTURE_SLACK).timestamp()
    for bucket in document:
        if not isinstance(bucket, dict):
            rejected.append(
                Rejection("activity", _shown(bucket), "activity bucket is not an object")
            )
            continue
        week = check_count("activity.week", bucket.get("week"))
        if isinstance(week, Rejection):
            rejected.append(week)
        elif not isinstance(week, int):
            rejected.append(
                Rejection("activity.week", "(absent)", "activity bucket without a week")
            )
        elif week > latest:
            rejected.append(Rejection("activity.week", str(week), "a week in the future"))
        else:
            buckets.append((week, bucket))
    return buckets, rejected


def _newest_is_partial(
    buckets: Sequence[tuple[int, Mapping[str, Any]]], *, unreadable: bool, asked_at: datetime
) -> bool:
    """Whether the newest readable bucket is the current, partial one.

    Every answer holds one partial bucket, its newest; when every bucket could be
    read, that is the newest readable one. When one could not be read, it may have
    been the partial one, and skipping the newest readable bucket regardless would
    lose a complete week; then the newest readable bucket is partial only if its
    window ends more than `ANSWER_SLACK` after the request. The slack covers a
    rolling window that ends the moment the server computed the answer, a little
    after our request (or the server's clock running ahead); the partial window
    ends days later (rolling: a week; ISO-aligned: next Monday).
    """
    if not buckets:
        return False
    if not unreadable:
        return True
    end = datetime.fromtimestamp(buckets[-1][0], UTC) + WEEK
    return end > asked_at + ANSWER_SLACK


def _offer_peers(
    records: Sequence[Fetched], peers: Fetched | None, counts: Counts, rejections: list[Rejection]
) -> None:
    """`peers_total` from whichever peer list the server published, read whole."""
    try:
        listed = count_listed_peers(records)
        if peers is not None:
            counts.offer("peers_total", count_peers(decode_json(peers)))
        elif listed is not None:
            counts.offer("peers_total", listed)
    except PayloadError as exc:
        rejections.append(Rejection("peers_total", "(payload)", exc.detail))


def parse(target: str, records: Sequence[Fetched], observed_at: datetime) -> Parsed:
    """All of one server's responses from one run, into observations.

    The platform is evidence only when NodeInfo named the software. A server read
    through the Mastodon API alone (NodeInfo switched off, or failing this run) gets
    a guess, marked `platform_known=False`, so it never renames the server's series.
    """
    parsed = Parsed()
    opted_out = opt_out_failure(records)
    if opted_out is not None:
        parsed.failure = opted_out  # nothing of it is stored, not even the software
        return parsed
    counts = Counts()
    by_kind = {record.kind: record for record in records if record.ok}
    nodeinfo = by_kind.get(NODEINFO)
    if nodeinfo is not None:
        try:
            parsed.software, parsed.version = read_nodeinfo(decode_json(nodeinfo), counts)
        except PayloadError as exc:
            parsed.failure = Failure(exc.kind, f"NodeInfo: {exc.detail}")
    parsed.platform_known = parsed.software is not None
    readers = (
        (INSTANCE_V2, read_mastodon_instance),
        (INSTANCE_V1, read_mastodon_instance),
        (MISSKEY_STATS, read_misskey_stats),
        (LEMMY_SITE, read_lemmy_site),
    )
    for kind, reader in readers:
        record = by_kind.get(kind)
        if record is None:
            continue
        try:
            document = decode_json(record)
            reader(document, counts)
            if parsed.software is None and kind in (INSTANCE_V2, INSTANCE_V1):
                parsed.software = guess_software(document)
                parsed.version = _instance_version(document)
        except PayloadError as exc:
            parsed.rejections.append(Rejection(kind, "(payload)", f"{exc.kind}: {exc.detail}"))
    if parsed.software is None:
        parsed.failure = parsed.failure or no_data_failure(records)
        return parsed
    parsed.failure = None  # an API answered even though NodeInfo did not
    parsed.platform = platform_of(parsed.software)
    _offer_peers(records, by_kind.get(PEERS), counts, parsed.rejections)
    values, rejected = counts.checked(parsed.software)
    parsed.rejections.extend(rejected)
    parsed.observations.extend(
        Observation(
            parsed.platform,
            target,
            metric,
            value,
            observed_at,
            platform_known=parsed.platform_known,
        )
        for metric, value in sorted(values.items())
    )
    activity = by_kind.get(ACTIVITY)
    if activity is not None:
        try:
            weekly, rejected = read_activity(
                decode_json(activity),
                parsed.platform,
                target,
                activity.fetched_at,
                platform_known=parsed.platform_known,
            )
            parsed.observations.extend(weekly)
            parsed.rejections.extend(rejected)
        except PayloadError as exc:
            parsed.rejections.append(Rejection("activity", "(payload)", exc.detail))
    return parsed


COMPATIBLE = re.compile(r"\(compatible;\s*([A-Za-z][\w.-]*)")
"""Pleroma, Akkoma and Pixelfed answer Mastodon's instance API with a version like
`2.7.2 (compatible; Pleroma 2.5.0)`."""


def guess_software(instance: Any) -> str:
    """The software behind a Mastodon instance API answer: the name in a
    `(compatible; Name ...)` version, else Mastodon. A guess (GoToSocial, for one,
    says nothing), so the platform made of it is never evidence."""
    version = _instance_version(instance) or ""
    match = COMPATIBLE.search(version)
    return match.group(1).lower() if match else "mastodon"


def _instance_version(document: Any) -> str | None:
    return _text(document.get("version")) if isinstance(document, dict) else None


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _text(value: Any) -> str | None:
    return value.strip()[:128] if isinstance(value, str) and value.strip() else None


def _first(mapping: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if mapping.get(key) is not None:
            return mapping[key]
    return None
