"""Deciding whether a number a server published may be stored.

Servers lie, by bug or on purpose (GoToSocial's "baffle" mode serves random
counts to crawlers; WordPress plugins send counters as strings). A wrong number
stored silently ends up in a chart, so every value goes through `check_count`,
and every refusal is kept with its reason so a person can see what was dropped.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

MAX_PLAUSIBLE = 10_000_000_000
"""Larger than any count a social network has published (10 billion)."""

_DIGITS = re.compile(r"^[0-9]+$")


@dataclass(frozen=True)
class Rejection:
    """A published value that was not stored, and why."""

    metric: str
    raw: str
    reason: str


class Missing:
    """The value is absent or null: not an error, just nothing to store."""


MISSING = Missing()


def check_count(metric: str, raw: Any) -> int | Rejection | Missing:
    """A non-negative integer count, a `Rejection`, or `MISSING` for absent/null.

    Accepted: integers, digit strings (`"123"`), and floats with no fractional part
    (`12.0`, which some servers emit). Refused: booleans, negative numbers, real
    fractions, non-numeric text, and values above `MAX_PLAUSIBLE`.
    """
    if raw is None:
        return MISSING
    shown = _show(raw)
    if isinstance(raw, bool):
        return Rejection(metric, shown, "not a number (boolean)")
    value: int
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, float):
        if not math.isfinite(raw):
            return Rejection(metric, shown, "not a finite number")
        if not raw.is_integer():
            return Rejection(metric, shown, "fractional count")
        value = int(raw)
    elif isinstance(raw, str):
        text = raw.strip()
        if text.startswith("-") and _DIGITS.match(text[1:]):
            return Rejection(metric, shown, "negative count")
        if not _DIGITS.match(text):
            return Rejection(metric, shown, "not a number")
        value = int(text)
    else:
        return Rejection(metric, shown, f"not a number ({type(raw).__name__})")
    if value < 0:
        return Rejection(metric, shown, "negative count")
    if value > MAX_PLAUSIBLE:
        return Rejection(metric, shown, f"implausibly large (over {MAX_PLAUSIBLE:,})")
    return value


def _show(raw: Any) -> str:
    text = repr(raw) if not isinstance(raw, str) else raw
    return text if len(text) <= 80 else text[:77] + "..."
