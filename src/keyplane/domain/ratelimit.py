"""Rate-limit maths (DESIGN §5), pure and exact.

Per-minute limit L as GCRA: each request adds one emission interval T = 60 s / L of "debt";
a request is admitted while debt + T ≤ C·T, with capacity C = L + ceil(L/6) (the seed's
"up to 2x for up to 10 seconds" burst). Debt drains at L·T per minute, i.e. in real time.

To stay exact forever (no floating-point drift, identical in Python and in the Redis Lua
script, whose numbers are doubles), time is counted in units of 1/L milliseconds: then
T = 60000 units exactly, and elapsed milliseconds drain `elapsed_ms · L` units. Debt never
exceeds C·60000, so every value stays far below 2**53.

The daily limit D counts requests per UTC day. All limits are checked before any is counted:
a rejected request consumes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple

from keyplane.domain.errors import ValidationFailed

MINUTE_MS = 60_000
DAY_MS = 86_400_000
T_UNITS = MINUTE_MS  # one emission interval, in units of 1/L ms
MAX_PER_MINUTE = 1_000_000
MAX_PER_DAY = 1_000_000_000


class Scope(StrEnum):
    """Who shares a budget: each key (default), all keys of a project, or of an organization."""

    KEY = "key"
    PROJECT = "project"
    ORG = "org"


def burst_capacity(per_minute: int) -> int:
    return per_minute + math.ceil(per_minute / 6)


@dataclass(frozen=True, slots=True)
class Limits:
    per_minute: int
    per_day: int
    capacity: int = field(init=False, compare=False, repr=False)  # L + ceil(L/6)
    # Derived once, read on every decision: the debt ceiling C·T and the debt at which the
    # burst allowance is used up and `remaining` starts to fall below L, (C - L)·T.
    ceiling: int = field(init=False, compare=False, repr=False)
    burst_debt: int = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.per_minute <= MAX_PER_MINUTE:
            raise ValidationFailed(
                f"A per-minute limit must be between 1 and {MAX_PER_MINUTE}, not {self.per_minute}."
            )
        if not 1 <= self.per_day <= MAX_PER_DAY:
            raise ValidationFailed(
                f"A daily limit must be between 1 and {MAX_PER_DAY}, not {self.per_day}."
            )
        capacity = burst_capacity(self.per_minute)
        object.__setattr__(self, "capacity", capacity)
        object.__setattr__(self, "ceiling", capacity * T_UNITS)
        object.__setattr__(self, "burst_debt", (capacity - self.per_minute) * T_UNITS)


PLAN_LIMITS: dict[str, Limits] = {
    "standard": Limits(per_minute=100, per_day=10_000),
    "professional": Limits(per_minute=300, per_day=50_000),
}
# Enterprise organizations carry custom limits; until set, they get professional's.
ENTERPRISE_DEFAULT = PLAN_LIMITS["professional"]


# Every cached key carries its limits (services/auth keeps up to 100,000 keys per process), and
# nearly all of them carry one of a few: one shared, immutable object each rather than one per
# key. Bounded; a refused value raises and is not cached.
@lru_cache(maxsize=1024)
def shared_limits(per_minute: int, per_day: int) -> Limits:
    return Limits(per_minute=per_minute, per_day=per_day)


def effective_limits(plan: str, custom: Limits | None, override: dict[str, int] | None) -> Limits:
    """The plan's limits (or an enterprise organization's custom ones), lowered by a key's
    override; only enterprise keys may raise them."""
    base = (custom or ENTERPRISE_DEFAULT) if plan == "enterprise" else PLAN_LIMITS[plan]
    if not override:
        return base
    per_minute = override.get("per_minute", base.per_minute)
    per_day = override.get("per_day", base.per_day)
    if plan != "enterprise":
        per_minute = min(per_minute, base.per_minute)
        per_day = min(per_day, base.per_day)
    return shared_limits(per_minute, per_day)


# A budget's state is a plain tuple: GCRA debt (units of 1/L ms) as of `stamp_ms`, and the
# count of the UTC day `stamp_ms` falls in (the last admitted request's day, so the day itself
# need not be kept: one int less per budget, and the in-process limiter keeps up to a million).
# One is built on every admitted request, and a tuple display is several times cheaper to
# build than a named tuple or a dataclass. (Packing the three into one int would save another
# ~100 bytes per budget, but its big-int shifts cost ~2,500 instructions per decision.)
BucketState = tuple[int, int, int]  # (debt, stamp_ms, day_count)
EMPTY_BUCKET: BucketState = (0, 0, 0)  # no debt, nothing counted


def bucket_state(debt: int, stamp_ms: int, day_count: int) -> BucketState:
    """The state of a budget with `debt` as of `stamp_ms` and `day_count` requests that day."""
    return (debt, stamp_ms, day_count)


class Decision(NamedTuple):
    allowed: bool
    limit: int  # L, for X-RateLimit-Limit
    remaining: int  # requests left within L, never negative
    reset_ms: int  # unix ms when remaining is back at L
    retry_after_ms: int  # 0 when allowed
    daily_limit: int
    daily_remaining: int
    daily_exceeded: bool = False

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait, at least 1 when rejected."""
        return 0 if self.allowed else max(1, -(-self.retry_after_ms // 1000))

    @property
    def reset(self) -> int:
        return -(-self.reset_ms // 1000)


# A named tuple's own constructor is Python code that maps arguments to fields; building from a
# complete tuple skips it and halves the cost of the decision made per request.
_new_tuple = tuple.__new__


def check(bucket: BucketState, limits: Limits, now_ms: int) -> tuple[Decision, BucketState]:
    """Decide one request; return the decision and the bucket to store if it is admitted
    (callers store nothing for a rejected request)."""
    per_minute = limits.per_minute
    ceiling = limits.ceiling
    debt, stamp_ms, day_count = bucket
    elapsed = now_ms - stamp_ms
    if elapsed > 0:  # drain; a long-idle bucket is simply empty
        drained = elapsed * per_minute
        debt = debt - drained if debt > drained else 0
    day = now_ms // DAY_MS
    if stamp_ms // DAY_MS != day:
        day_count = 0
    per_day = limits.per_day
    new_debt = debt + T_UNITS
    # Two straight paths with plain conditionals rather than min()/max(): this runs on every
    # request, and nearly every request takes the first.
    if new_debt <= ceiling and day_count < per_day:
        tokens = (ceiling - new_debt) // T_UNITS  # >= 0 here
        refill_units = new_debt - limits.burst_debt
        decision: Decision = _new_tuple(
            Decision,
            (
                True,
                per_minute,
                per_minute if tokens > per_minute else tokens,
                now_ms + -(-refill_units // per_minute) if refill_units > 0 else now_ms,
                0,
                per_day,
                per_day - day_count - 1,
                False,
            ),
        )
        return decision, (new_debt, now_ms, day_count + 1)
    day_ok = day_count < per_day
    # The daily quota, once spent, is the binding one: retry after UTC midnight.
    retry_ms = -(-(new_debt - ceiling) // per_minute) if day_ok else (day + 1) * DAY_MS - now_ms
    tokens = (ceiling - debt) // T_UNITS
    refill_units = debt - limits.burst_debt
    rejected: Decision = _new_tuple(
        Decision,
        (
            False,
            per_minute,
            per_minute if tokens > per_minute else tokens if tokens > 0 else 0,
            now_ms + -(-refill_units // per_minute) if refill_units > 0 else now_ms,
            retry_ms,
            per_day,
            per_day - day_count if day_ok else 0,
            not day_ok,
        ),
    )
    return rejected, bucket


def combine(decisions: list[Decision]) -> Decision:
    """Several budgets apply (a shared scope and a key's own override): the request passes
    only if all admit it; headers describe the tightest one."""
    rejected = [d for d in decisions if not d.allowed]
    if rejected:
        return max(rejected, key=lambda d: d.retry_after_ms)
    return min(decisions, key=lambda d: (d.remaining, d.daily_remaining))
