"""The crawl's backoff as pure functions of a server's last state, the error and the time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tracker.crawl import backoff as b
from tracker.crawl.backoff import ServerState, after_failure, after_move, after_opt_out

T0 = datetime(2025, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)

ALIVE = ServerState(state="alive", next_check=T0, last_seen=T0 - D, last_checked=T0 - D)
NEW = ServerState(next_check=T0)


def fail_repeatedly(server: ServerState, kind: str, times: int) -> list[ServerState]:
    """Fail at each `next_check`, as the crawl would; every state on the way."""
    states = []
    for _ in range(times):
        now = server.next_check or T0
        server = after_failure(server, kind, now)
        states.append(server)
    return states


@pytest.mark.parametrize(
    ("kind", "base"),
    [
        ("http_500", 6 * H),
        ("http_503", 6 * H),
        ("rate_limited", 6 * H),
        ("http_429", 6 * H),
        ("timeout", 6 * H),
        ("deadline", 6 * H),
        ("protocol", 6 * H),
        ("refused", 12 * H),
        ("connect_timeout", 12 * H),
        ("dns", 24 * H),
        ("tls", 24 * H),
        ("http_404", 6 * H),
        ("not_json", 6 * H),
        ("bad_json", 6 * H),
        ("empty_body", 6 * H),
        ("bad_shape", 6 * H),
        ("no_stats", 6 * H),
        ("not_published", 6 * H),
        ("too_large", 6 * H),
        ("bad_encoding", 6 * H),
        ("redirect_loop", 6 * H),
        ("foreign_host", 6 * H),
        ("something_new", 6 * H),
    ],
)
def test_first_failure_waits_the_base_delay(kind: str, base: timedelta) -> None:
    state = after_failure(ALIVE, kind, T0)
    assert state.next_check == T0 + base
    assert state.failures == 1
    assert state.failing_since == T0
    assert state.last_error == kind
    assert state.last_checked == T0
    assert state.state == "dying"
    assert state.last_seen == ALIVE.last_seen  # the last good answer is kept
    assert b.base_delay(kind) == base


def test_delay_doubles_per_consecutive_failure_up_to_30_days() -> None:
    states = fail_repeatedly(NEW, "dns", 8)
    delays = [s.next_check - s.last_checked for s in states if s.next_check and s.last_checked]
    assert delays[:5] == [24 * H, 48 * H, 96 * H, 192 * H, 384 * H]
    assert delays[5] == 30 * D  # 768 h capped
    assert all(s.failing_since == T0 for s in states)
    assert [s.failures for s in states] == list(range(1, 9))


def test_never_answered_server_stays_discovered_until_dead() -> None:
    states = fail_repeatedly(NEW, "refused", 6)
    assert {s.state for s in states} == {"discovered"}


def test_dead_needs_more_than_6_failures_and_more_than_7_days() -> None:
    # 6 h base: failures at 0, 6, 18, 42, 90, 186 h (7.75 d), the 7th at 378 h
    states = fail_repeatedly(ALIVE, "timeout", 8)
    assert [s.state for s in states[:6]] == ["dying"] * 6
    assert states[5].last_checked == T0 + 186 * H  # past 7 days, but only 6 failures
    seventh = states[6]
    assert seventh.failures == 7
    assert seventh.state == "dead"
    assert seventh.next_check == (seventh.last_checked or T0) + 7 * D  # weekly
    eighth = states[7]
    assert eighth.state == "dead"
    assert eighth.next_check == (eighth.last_checked or T0) + 7 * D


def test_many_failures_within_7_days_are_not_dead() -> None:
    server = ALIVE
    for hour in range(10):  # ten failures in ten hours (e.g. retried by hand)
        server = after_failure(server, "timeout", T0 + hour * H)
    assert server.failures == 10
    assert server.state == "dying"
    later = after_failure(server, "timeout", T0 + 7 * D)  # exactly 7 days: not more
    assert later.state == "dying"
    dead = after_failure(server, "timeout", T0 + 7 * D + timedelta(seconds=1))
    assert dead.state == "dead"


def test_success_resets_everything() -> None:
    failing = fail_repeatedly(ALIVE, "tls", 9)[-1]
    assert failing.state == "dead"
    now = T0 + 100 * D
    back = b.after_success(failing, now)
    assert back == ServerState(
        state="alive",
        failures=0,
        failing_since=None,
        last_error=None,
        next_check=now + b.ALIVE_RECHECK,
        last_seen=now,
        last_checked=now,
    )
    again = after_failure(back, "tls", now + H)
    assert again.failures == 1
    assert again.failing_since == now + H  # a new run of failures


def test_alive_is_due_at_the_next_scheduled_crawl() -> None:
    checked_late = T0 + 5 * H  # a long crawl started at T0 measured it at +5 h
    state = b.after_success(NEW, checked_late)
    assert state.next_check is not None
    assert state.next_check <= T0 + 6 * H  # the next crawl (every 6 h) measures it again
    assert b.after_success(NEW, T0, recheck=D).next_check == T0 + D


def test_forbidden_address_is_dead_for_a_month() -> None:
    state = after_failure(ALIVE, "forbidden_address", T0)
    assert state.state == "dead"
    assert state.next_check == T0 + 30 * D
    assert state.failures == 1
    assert state.last_error == "forbidden_address"
    # when it resolves somewhere allowed later, an answer makes it alive again
    assert b.after_success(state, T0 + 30 * D).state == "alive"


def test_internal_error_does_not_count_towards_dead() -> None:
    failing = fail_repeatedly(ALIVE, "timeout", 3)[-1]
    state = after_failure(failing, "internal", T0 + 20 * D)
    assert state.failures == failing.failures
    assert state.failing_since == failing.failing_since
    assert state.state == failing.state
    assert state.last_error == "internal"
    assert state.next_check == T0 + 20 * D + 6 * H


@pytest.mark.parametrize("kind", ["robots", "opted_out"])
def test_opt_out_kinds_given_as_failures_opt_out(kind: str) -> None:
    state = after_failure(ALIVE, kind, T0)
    assert state.state == "opted_out"
    assert state.failures == 0
    assert state.last_error == kind
    assert state.next_check == T0 + 30 * D


def test_opt_out_is_rechecked_monthly_and_kept_through_failures() -> None:
    failing = fail_repeatedly(ALIVE, "timeout", 2)[-1]
    out = after_opt_out(failing, T0 + 5 * D, reason="http_410")
    assert out.state == "opted_out"
    assert out.failures == 0
    assert out.failing_since is None
    assert out.last_error == "http_410"
    assert out.next_check == T0 + 35 * D
    assert out.last_seen == ALIVE.last_seen  # not "answered with statistics"
    for _ in range(10):  # robots.txt unreachable month after month: still opted out
        out = after_failure(out, "dns", out.next_check or T0)
        assert out.state == "opted_out"
        assert out.next_check == (out.last_checked or T0) + 30 * D
    assert after_opt_out(NEW, T0).last_error == "opted_out"


def test_move_then_failures_keep_moved_until_dead() -> None:
    moved = after_move(ALIVE, T0, "new.example")
    assert moved.state == "moved"
    assert moved.moved_to == "new.example"
    assert moved.next_check == T0 + 30 * D
    assert moved.failures == 0
    assert after_move(moved, T0 + D).moved_to == "new.example"  # kept when not given
    states = fail_repeatedly(moved, "timeout", 7)
    assert [s.state for s in states] == ["moved"] * 6 + ["dead"]
    assert states[0].moved_to == "new.example"
    assert b.after_success(moved, T0).moved_to is None


def test_excluded_stays_excluded() -> None:
    excluded = ServerState(state="excluded", next_check=T0)
    state = after_failure(excluded, "timeout", T0)
    assert state.state == "excluded"
    assert state.next_check == T0 + 30 * D


def test_long_runs_of_failures_stay_capped() -> None:
    states = fail_repeatedly(ALIVE, "http_502", 200)
    assert all((s.next_check or T0) - (s.last_checked or T0) <= 30 * D for s in states)
    assert states[-1].failures == 200


def test_row_round_trip() -> None:
    row = {
        "host": "a.example",
        "state": "dying",
        "software": "mastodon",
        "first_seen": T0,
        "failures": 2,
        "failing_since": T0,
        "last_error": "dns",
        "next_check": T0 + D,
        "last_seen": T0 - D,
        "last_checked": T0,
        "moved_to": None,
        "cluster": None,
    }
    state = ServerState.of(row)
    assert state == ServerState(
        state="dying",
        failures=2,
        failing_since=T0,
        last_error="dns",
        next_check=T0 + D,
        last_seen=T0 - D,
        last_checked=T0,
    )
    assert state.as_row() == {
        key: row[key]
        for key in (
            "state",
            "failures",
            "failing_since",
            "last_error",
            "next_check",
            "last_seen",
            "last_checked",
            "moved_to",
        )
    }
    fresh = ServerState.of({"host": "b.example", "state": "discovered", "next_check": T0})
    assert fresh == ServerState(next_check=T0)


def test_unknown_state_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown server state"):
        ServerState.of({"state": "zombie"})
    with pytest.raises(ValueError, match="unknown server state"):
        b.state_of("")
    with pytest.raises(ValueError, match="negative"):
        ServerState(failures=-1)


def test_states_are_immutable() -> None:
    with pytest.raises(AttributeError):
        NEW.failures = 3  # type: ignore[misc]
