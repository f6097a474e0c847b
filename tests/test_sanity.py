import pytest

from tracker.sanity import MAX_PLAUSIBLE, MISSING, Rejection, check_count


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0, 0),
        (12, 12),
        ("3605039", 3605039),
        (" 42 ", 42),
        (12.0, 12),
        (MAX_PLAUSIBLE, MAX_PLAUSIBLE),
    ],
)
def test_accepts_counts(raw: object, expected: int) -> None:
    assert check_count("users_total", raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (-1, "negative"),
        ("-5", "negative"),
        (12.5, "fractional"),
        ("12.5", "not a number"),
        (True, "boolean"),
        ("not-a-number", "not a number"),
        (MAX_PLAUSIBLE + 1, "implausibly large"),
        ("99999999999999", "implausibly large"),
        (float("nan"), "finite"),
        ([1], "list"),
    ],
)
def test_refuses_with_reason(raw: object, reason: str) -> None:
    result = check_count("users_total", raw)
    assert isinstance(result, Rejection)
    assert reason in result.reason
    assert result.metric == "users_total"


def test_null_is_missing_not_rejected() -> None:
    assert check_count("users_active_month", None) is MISSING
