"""Pure parsers for AT Protocol servers: relays' `listHosts`, PDSes' `listRepos` and
`describeServer`.

Both list methods are paginated, and a count is only true once the last page has
been read: a server cut off mid-way (deadline, error, a cursor that repeats, the
page cap) must not leave a partial count that looks like a total, so those end as
a failure and store no count. Per-host readings of a relay are each complete on
their own, so the pages that did arrive are kept.

The end of a listing (`../shared/payloads/README.md`): a page without a cursor, or
an empty page. A full last page still carries a cursor, and the next one is empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tracker.model import Failure, Fetched, Observation, Parsed, PayloadError, decode_json
from tracker.parsers.common import no_data_failure
from tracker.sanity import Rejection, check_count
from tracker.targets import TargetError, parse_target

PLATFORM = "bluesky"

RELAY_PREFIX = "relay:"
"""Targets of a relay's readings: `relay:<relay>` for its network total and the hosts
that total covers, `relay:<relay>/<host>` for its reading of one host. A PDS
enumeration keeps the plain host key, so a URL configured both as relay and as PDS,
or a PDS the relay also lists, never writes two different counts into one series."""
TARGET_MAX = 255
"""Longest target the `series` table holds."""

# Fetch-log kinds; parse reads the records back by kind, in the order they were fetched.
LIST_HOSTS = "listHosts"
LIST_REPOS = "listRepos"
DESCRIBE = "describeServer"

LIST_HOSTS_PATH = "/xrpc/com.atproto.sync.listHosts"
LIST_REPOS_PATH = "/xrpc/com.atproto.sync.listRepos"
DESCRIBE_PATH = "/xrpc/com.atproto.server.describeServer"

ITEMS = {LIST_HOSTS: "hosts", LIST_REPOS: "repos"}
METHODS = {LIST_HOSTS: "com.atproto.sync.listHosts", LIST_REPOS: "com.atproto.sync.listRepos"}
NOT_IMPLEMENTED_STATUSES = frozenset({404, 501})

COUNTED_HOST_STATUSES = frozenset({"active"})
"""Host statuses whose accounts make up a relay's network total.

The lexicon's `hostStatus` is one of active, idle, offline, throttled, banned.
Only `active` hosts are summed, as the payload notes advise: the relay has no
live subscription to idle (no recent events) or offline (unreachable) hosts,
and throttled or banned ones were limited or blocked by its operator; summing
them would add dormant, dead and spam accounts to the network. A host listed
without a status counts as active, since the relay marks it as nothing else
(`status` is optional in the lexicon). Per-host readings are stored whatever
the status, so another rule can be applied later from the stored rows.
"""


@dataclass
class Listing:
    """The items of a paginated listing, and whether its end was reached."""

    items: list[Any] = field(default_factory=list)
    failure: Failure | None = None


def page_step(document: Any, items_key: str) -> tuple[list[Any], str | None]:
    """One page's items and the cursor to ask for next (None: the listing ended).

    Raises PayloadError for a page that is not the documented shape.
    """
    if not isinstance(document, dict) or not isinstance(document.get(items_key), list):
        raise PayloadError("bad_shape", f"the page has no {items_key!r} list")
    items: list[Any] = document[items_key]
    cursor = document.get("cursor")
    if cursor is None or cursor == "" or not items:
        return items, None
    if isinstance(cursor, bool) or not isinstance(cursor, str | int):
        raise PayloadError("bad_shape", f"the cursor is not a string ({cursor!r:.40})")
    return items, str(cursor)


def read_listing(records: Sequence[Fetched], kind: str, max_pages: int) -> Listing:
    """Walk the pages of one listing in fetch order, stopping where the fetch stopped."""
    listing = Listing()
    method = METHODS[kind]
    seen: set[str] = set()
    pages = [record for record in records if record.kind == kind]
    for number, record in enumerate(pages, start=1):
        where = f"{method} page {number}"
        if not record.ok:
            listing.failure = _page_failure(record, kind, where)
            if number > 1:
                listing.failure = Failure(
                    listing.failure.kind,
                    f"{listing.failure.detail} (after {number - 1} good pages; "
                    "a partial count is not stored)",
                )
            return listing
        try:
            items, cursor = page_step(decode_json(record), ITEMS[kind])
        except PayloadError as exc:
            listing.failure = Failure(exc.kind, f"{where}: {exc.detail}")
            return listing
        listing.items.extend(items)
        if cursor is None:
            return listing
        if cursor in seen:
            listing.failure = Failure(
                "cursor_loop",
                f"{where} returned cursor {cursor[:60]!r} a second time: the listing "
                "would never end, so no total is stored",
            )
            return listing
        seen.add(cursor)
    if not pages:
        listing.failure = Failure("no_stats", f"{method} was not fetched")
    elif len(pages) >= max_pages:
        listing.failure = Failure(
            "too_many_pages",
            f"{method} still had more after {len(pages)} pages (max_pages); "
            "a partial count is not stored",
        )
    else:
        listing.failure = Failure(
            "incomplete",
            f"{method} stopped after {len(pages)} pages with more to come; "
            "a partial count is not stored",
        )
    return listing


def _page_failure(record: Fetched, kind: str, where: str) -> Failure:
    """A page that failed; a server without the method says so in one of four ways:
    404, 501, the XRPC error `MethodNotImplemented`, or (the reference PDS, for a
    method it would proxy but has no service for) 400 "No service configured for"."""
    error_name, message = _xrpc_error(record)
    if (
        record.status in NOT_IMPLEMENTED_STATUSES
        or error_name == "MethodNotImplemented"
        or (record.status == 400 and message.startswith("No service configured for"))
    ):
        shown = " ".join(filter(None, (f"HTTP {record.status}", error_name, message[:120])))
        return Failure(
            "not_implemented", f"the server does not implement {METHODS[kind]} ({shown})"
        )
    detail = record.error_detail or "no usable answer"
    if error_name:
        detail = (
            f"{detail} ({error_name}: {message[:120]})" if message else f"{detail} ({error_name})"
        )
    return Failure(str(record.error_kind or "bad_answer"), f"{where}: {detail}")


def _xrpc_error(record: Fetched) -> tuple[str | None, str]:
    """The `error` name and `message` of an XRPC error body (`{"error": ..., "message": ...}`)."""
    try:
        document = decode_json(record)
    except PayloadError:
        return None, ""
    if not isinstance(document, dict):
        return None, ""
    name, message = document.get("error"), document.get("message")
    return (
        name[:64] if isinstance(name, str) and name else None,
        message.strip() if isinstance(message, str) else "",
    )


def host_key(hostname: Any) -> str | None:
    """A listed host name as a target key (`host[:port]`, IDNA, lower case), or None."""
    if not isinstance(hostname, str) or "/" in hostname or "@" in hostname:
        return None
    try:
        return parse_target(hostname).key
    except TargetError:
        return None


def relay_target(relay: str) -> str:
    """The target of a relay's network total and `servers_total`."""
    return f"{RELAY_PREFIX}{relay}"


def relay_host_target(relay: str, host: str) -> str:
    """The target of a relay's reading of one host's `accountCount`."""
    return f"{RELAY_PREFIX}{relay}/{host}"


def parse(
    target: str, records: Sequence[Fetched], observed_at: datetime, *, max_pages: int
) -> Parsed:
    """A relay's or a PDS's fetch log, told apart by what was asked (reparse has only the
    key and the log): a relay is asked for its host list."""
    if any(record.kind == LIST_HOSTS for record in records):
        return parse_relay(target, records, observed_at, max_pages)
    return parse_pds(target, records, observed_at, max_pages)


def parse_relay(
    target: str, records: Sequence[Fetched], observed_at: datetime, max_pages: int
) -> Parsed:
    """Per-host `accountCount` readings, and the network total of the active hosts.

    `target` is the relay's key; the readings go under the `relay:` targets
    (see RELAY_PREFIX). `users_total` of the relay = the sum of `accountCount` over
    the hosts counted (see COUNTED_HOST_STATUSES) whose name and count pass the checks;
    `servers_total` = how many hosts that sum covers. A host whose count is
    refused is left out of both, with its rejection kept.
    """
    parsed = Parsed(platform=PLATFORM)
    listing = read_listing(records, LIST_HOSTS, max_pages)
    seen: set[str] = set()
    total = servers = 0
    for entry in listing.items:
        if not isinstance(entry, dict):
            parsed.rejections.append(
                Rejection("users_total", _shown(entry), "host is not an object")
            )
            continue
        key = host_key(entry.get("hostname"))
        if key is None:
            parsed.rejections.append(
                Rejection("users_total", _shown(entry.get("hostname")), "not a valid host name")
            )
            continue
        if key in seen:
            parsed.rejections.append(
                Rejection("users_total", key, "host listed twice; the first listing is kept")
            )
            continue
        host_target = relay_host_target(target, key)
        if len(host_target) > TARGET_MAX:
            reason = (
                f"host name too long to store under {relay_target(target)} "
                f"({TARGET_MAX} characters at most)"
            )
            parsed.rejections.append(Rejection("users_total", _shown(key), reason))
            continue
        seen.add(key)
        count = check_count("users_total", entry.get("accountCount"))
        if isinstance(count, Rejection):
            parsed.rejections.append(Rejection(count.metric, count.raw, f"{key}: {count.reason}"))
            continue
        if not isinstance(count, int):
            continue  # accountCount is optional: this host publishes none
        parsed.observations.append(
            Observation(PLATFORM, host_target, "users_total", count, observed_at)
        )
        status = entry.get("status")
        if status is None or (isinstance(status, str) and status in COUNTED_HOST_STATUSES):
            total += count
            servers += 1
    if listing.failure is not None:
        parsed.failure = (
            no_data_failure(records) if listing.failure.kind == "no_stats" else listing.failure
        )
        return parsed
    if not seen:
        parsed.failure = Failure("no_stats", "the relay lists no usable hosts")
        return parsed
    network = relay_target(target)
    checked = check_count("users_total", total)
    if isinstance(checked, Rejection):
        parsed.rejections.append(Rejection(checked.metric, checked.raw, f"total: {checked.reason}"))
    else:
        parsed.observations.append(
            Observation(PLATFORM, network, "users_total", total, observed_at)
        )
    parsed.observations.append(
        Observation(PLATFORM, network, "servers_total", servers, observed_at)
    )
    return parsed


def parse_pds(
    target: str, records: Sequence[Fetched], observed_at: datetime, max_pages: int
) -> Parsed:
    """All and active accounts of one PDS, and whether it takes sign-ups without invites."""
    parsed = Parsed(platform=PLATFORM)
    registrations_open = read_registrations_open(records, parsed.rejections)
    if registrations_open is not None:
        parsed.observations.append(
            Observation(PLATFORM, target, "registrations_open", registrations_open, observed_at)
        )
    listing = read_listing(records, LIST_REPOS, max_pages)
    if listing.failure is not None:
        parsed.failure = (
            no_data_failure(records) if listing.failure.kind == "no_stats" else listing.failure
        )
        return parsed
    try:
        total, active = count_repos(listing.items)
    except PayloadError as exc:
        parsed.failure = Failure(exc.kind, f"{LIST_REPOS}: {exc.detail}")
        return parsed
    parsed.observations.append(Observation(PLATFORM, target, "users_total", total, observed_at))
    if active is None:
        parsed.rejections.append(
            Rejection("users_active", "(absent)", "the server publishes no account status")
        )
    else:
        parsed.observations.append(
            Observation(PLATFORM, target, "users_active", active, observed_at)
        )
    return parsed


def count_repos(repos: Sequence[Any]) -> tuple[int, int | None]:
    """(accounts, active accounts) of a complete `listRepos` listing, each DID once.

    Active = `"active": true` and no `status`. A PDS older than account status
    (2024) sends no `active` at all: then the active count is unknown (None),
    not zero. A repo that is not an object with a DID makes the whole count
    unreliable, so it raises rather than counting around it.
    """
    states: dict[str, bool] = {}
    publishes_status = False
    for repo in repos:
        did = repo.get("did") if isinstance(repo, dict) else None
        if not isinstance(did, str) or not did.startswith("did:"):
            raise PayloadError("bad_shape", f"a repo without a DID ({_shown(repo)})")
        if did in states:
            continue
        publishes_status = publishes_status or "active" in repo
        states[did] = repo.get("active") is True and repo.get("status") is None
    active = sum(states.values()) if publishes_status or not states else None
    return len(states), active


def read_registrations_open(records: Sequence[Fetched], rejections: list[Rejection]) -> int | None:
    """`describeServer.inviteCodeRequired` as 0 (invite needed) or 1 (open); None if unsaid."""
    record = next((r for r in records if r.kind == DESCRIBE and r.ok), None)
    if record is None:
        return None
    try:
        document = decode_json(record)
    except PayloadError as exc:
        rejections.append(Rejection("registrations_open", "(payload)", f"{exc.kind}: {exc.detail}"))
        return None
    if not isinstance(document, dict):
        rejections.append(Rejection("registrations_open", "(payload)", "not a JSON object"))
        return None
    required = document.get("inviteCodeRequired")
    if required is None:
        return None
    if not isinstance(required, bool):
        rejections.append(
            Rejection("registrations_open", _shown(required), "inviteCodeRequired is not a boolean")
        )
        return None
    return 0 if required else 1


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
