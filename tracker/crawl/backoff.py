"""When the crawl checks a server again, and what state it is in: pure functions of the last try.

Most of a whole-fediverse crawl is servers that are gone: a name that no longer
resolves, a certificate that expired, a box that refuses connections. Checking
each of them every 6 hours would spend most requests on nothing, and on other
people's machines. So each failure pushes `next_check` back: a base delay by the
kind of failure (one that is likely to last waits longer), doubled per
consecutive failure, capped at 30 days. A server that failed more than 6 times
over more than 7 days is `dead` and checked weekly, so a server that comes back
is found again within a week. One good answer resets everything.

States (docs/crawl.md): `discovered` (listed, never answered), `alive`, `dying`
(answered once, failing now), `dead`, `moved` (a permanent redirect to another
host), `opted_out` (robots.txt, HTTP 410 or a NodeInfo privacy flag: rechecked
monthly), `excluded` (config: never contacted; set by the crawl, not here).

Choices beyond the design:

- `forbidden_address` (the name resolves to a loopback/private/reserved address):
  `dead` at once and checked again in 30 days. It is not a fault that retrying
  fixes, and every retry is a look-up steered by whoever runs that name.
- `internal` (a bug in tracker) is not the server's fault: it is retried on the
  short delay without counting towards `dead`.
- `robots` or `opted_out` given to `after_failure` is an opt-out, not a failure.
- A failure does not undo a redirect or an opt-out: a `moved` server stays `moved`
  (until it is `dead` like any other), an `opted_out` one stays `opted_out` and is
  rechecked monthly; the failure is counted either way. An `excluded` server is
  never contacted, so a failure there only records itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any, Literal, cast

State = Literal["discovered", "alive", "dying", "dead", "moved", "opted_out", "excluded"]
STATES: frozenset[str] = frozenset(
    {"discovered", "alive", "dying", "dead", "moved", "opted_out", "excluded"}
)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

SHORT = 6 * HOUR
"""Time-outs, dropped connections, 5xx, 429 and anything not listed: often passing."""
CONNECT = 12 * HOUR
"""Connection refused or not accepted in time: the machine is down or gone."""
LONG = 24 * HOUR
"""DNS or TLS: the name or the certificate is broken, which people fix in days."""
MAX_DELAY = 30 * DAY
"""No server waits longer than this between checks, however often it failed."""

DEAD_FAILURES = 6
"""`dead` after more than this many consecutive failures..."""
DEAD_SPAN = 7 * DAY
"""...spanning more than this."""
DEAD_RECHECK = 7 * DAY
"""A dead server is checked weekly, so one that comes back is found within a week."""
FORBIDDEN_RECHECK = 30 * DAY
"""A name resolving to a forbidden address is looked at again monthly, never sooner."""
OPT_OUT_RECHECK = 30 * DAY
"""An opt-out is rechecked monthly, in case the admin changed their mind."""
MOVED_RECHECK = 30 * DAY
"""A moved server is rechecked monthly: its new host is crawled on its own."""
ALIVE_RECHECK = 1 * HOUR
"""Shorter than the 6-hour crawl schedule, so an alive server is due at every crawl;
long enough that a crawl started again at once does not measure it twice."""

BASE_DELAY: Mapping[str, timedelta] = {
    "refused": CONNECT,
    "connect_timeout": CONNECT,
    "dns": LONG,
    "tls": LONG,
}
"""Base delay by error kind (README "Error kinds"); every other kind gets `SHORT`:
`timeout`, `deadline`, `protocol`, `http_5xx`, `rate_limited`/`http_429`, and the
answers that are not statistics (`http_4xx`, `not_json`, `bad_json`, `empty_body`,
`bad_shape`, `no_stats`, `not_published`, `too_large`, `bad_encoding`,
`redirect_loop`, `foreign_host`)."""
FORBIDDEN = "forbidden_address"
INTERNAL = "internal"
OPT_OUT_KINDS = frozenset({"robots", "opted_out"})


@dataclass(frozen=True)
class ServerState:
    """The columns of a `servers` row that the backoff reads and writes."""

    state: State = "discovered"
    failures: int = 0
    failing_since: datetime | None = None
    last_error: str | None = None
    next_check: datetime | None = None
    last_seen: datetime | None = None
    last_checked: datetime | None = None
    moved_to: str | None = None

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"unknown server state {self.state!r}")
        if self.failures < 0:
            raise ValueError("failures must not be negative")

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> ServerState:
        """From a `servers` row (missing columns take their defaults)."""
        names = [column.name for column in fields(cls)]
        values = {name: row[name] for name in names if row.get(name) is not None}
        if "state" in values:
            values["state"] = state_of(values["state"])
        return cls(**values)

    def as_row(self) -> dict[str, Any]:
        """The columns to write back into the `servers` row."""
        return asdict(self)


def state_of(text: str) -> State:
    """A state read from the database, checked."""
    if text not in STATES:
        raise ValueError(f"unknown server state {text!r}")
    return cast(State, text)


def base_delay(error_kind: str) -> timedelta:
    """The delay after a first failure of this kind."""
    return BASE_DELAY.get(error_kind, SHORT)


def after_success(
    server: ServerState, now: datetime, *, recheck: timedelta = ALIVE_RECHECK
) -> ServerState:
    """It answered with statistics: `alive`, every failure forgotten."""
    return ServerState(
        state="alive",
        failures=0,
        failing_since=None,
        last_error=None,
        next_check=now + recheck,
        last_seen=now,
        last_checked=now,
        moved_to=None,
    )


def after_failure(server: ServerState, error_kind: str, now: datetime) -> ServerState:
    """It failed with `error_kind` (the fetch log's kind): back off, maybe `dead`."""
    if error_kind in OPT_OUT_KINDS:
        return after_opt_out(server, now, reason=error_kind)
    if error_kind == INTERNAL:
        return replace(server, last_error=error_kind, last_checked=now, next_check=now + SHORT)
    failures = server.failures + 1
    since = server.failing_since if server.failures and server.failing_since else now
    failed = replace(
        server, failures=failures, failing_since=since, last_error=error_kind, last_checked=now
    )
    if error_kind == FORBIDDEN:
        return replace(failed, state="dead", next_check=now + FORBIDDEN_RECHECK)
    if server.state == "opted_out":
        return replace(failed, next_check=now + OPT_OUT_RECHECK)
    if server.state == "excluded":
        return replace(failed, next_check=now + MAX_DELAY)
    if failures > DEAD_FAILURES and now - since > DEAD_SPAN:
        return replace(failed, state="dead", next_check=now + DEAD_RECHECK)
    delay = min(base_delay(error_kind) * 2 ** min(failures - 1, 30), MAX_DELAY)
    return replace(failed, state=_failing_state(server), next_check=now + delay)


def _failing_state(server: ServerState) -> State:
    """What a failing server is called before it counts as dead."""
    if server.state == "moved":
        return "moved"
    return "dying" if server.last_seen is not None else "discovered"


def after_opt_out(
    server: ServerState, now: datetime, *, reason: str | None = "opted_out"
) -> ServerState:
    """robots.txt, HTTP 410 or a privacy flag said no: `opted_out`, rechecked monthly.

    Its failures are cleared (it answered); `last_seen` is kept, as it is the last
    time the server gave statistics. `reason` goes into `last_error`.
    """
    return replace(
        server,
        state="opted_out",
        failures=0,
        failing_since=None,
        last_error=reason,
        next_check=now + OPT_OUT_RECHECK,
        last_checked=now,
    )


def after_move(server: ServerState, now: datetime, new_host: str | None = None) -> ServerState:
    """A permanent redirect to another host: `moved` (the crawl discovers `new_host`).

    Rechecked monthly, in case the old name is used again; `new_host` None keeps
    the `moved_to` already known.
    """
    return replace(
        server,
        state="moved",
        failures=0,
        failing_since=None,
        last_error=None,
        next_check=now + MOVED_RECHECK,
        last_checked=now,
        moved_to=new_host if new_host is not None else server.moved_to,
    )
