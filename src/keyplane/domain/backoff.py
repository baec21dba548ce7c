"""Retry delays: exponential backoff with jitter, so that many failed deliveries to one
receiver do not all come back at the same moment."""

from __future__ import annotations

MAX_DELAY = 6 * 3600.0


def retry_delay(attempt: int, base: float, unit_random: float, cap: float = MAX_DELAY) -> float:
    """Seconds to wait after failed attempt number `attempt` (1 = the first): base doubling per
    attempt, capped, then scaled into [½, 1] of that by `unit_random` in [0, 1) ("equal
    jitter": never less than half the nominal delay, never more than it)."""
    nominal = min(cap, base * 2.0 ** min(max(attempt - 1, 0), 60))
    return nominal * (0.5 + 0.5 * min(max(unit_random, 0.0), 1.0))
