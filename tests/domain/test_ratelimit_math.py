"""Properties of the limiter maths against a fake clock (DESIGN §5)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyplane.domain.errors import ValidationFailed
from keyplane.domain.ratelimit import (
    DAY_MS,
    EMPTY_BUCKET,
    MINUTE_MS,
    BucketState,
    Limits,
    burst_capacity,
    check,
    effective_limits,
)

START = 1_800_000_000_000  # a fixed "now" in unix ms, mid-day UTC

per_minute = st.integers(min_value=1, max_value=5_000)
gaps = st.lists(st.integers(min_value=0, max_value=3_000), min_size=1, max_size=400)


def run(limits: Limits, arrivals: list[int]) -> list[int]:
    """Times at which requests were admitted."""
    bucket = EMPTY_BUCKET
    admitted = []
    for now in arrivals:
        decision, after = check(bucket, limits, now)
        if decision.allowed:
            admitted.append(now)
            bucket = after
        else:
            assert after == bucket  # a rejected request consumes nothing
    return admitted


@given(per_minute, gaps)
@settings(max_examples=300)
def test_never_more_than_the_allowance_in_any_window(limit: int, steps: list[int]) -> None:
    """In any window of w ms at most capacity + w·L/60000 requests pass."""
    limits = Limits(per_minute=limit, per_day=10**9)
    arrivals = [START + sum(steps[: i + 1]) for i in range(len(steps))]
    admitted = run(limits, arrivals)
    capacity = burst_capacity(limit)
    for i, first in enumerate(admitted):
        for j in range(i, len(admitted)):
            window = admitted[j] - first
            allowed = capacity + math.floor(window * limit / MINUTE_MS)
            assert j - i + 1 <= allowed


@given(per_minute)
def test_an_idle_key_bursts_exactly_its_capacity_then_gets_l_per_minute(limit: int) -> None:
    limits = Limits(per_minute=limit, per_day=10**9)
    bucket = EMPTY_BUCKET
    burst = 0
    while True:
        decision, after = check(bucket, limits, START)
        if not decision.allowed:
            break
        bucket, burst = after, burst + 1
    assert burst == limit + math.ceil(limit / 6)
    assert decision.remaining == 0
    assert decision.retry_after >= 1
    # Over the next minute exactly L more requests are admitted, evenly.
    admitted = run_from(bucket, limits, START, START + MINUTE_MS)
    assert admitted == limit


def run_from(bucket: BucketState, limits: Limits, start: int, end: int) -> int:
    count = 0
    now = start
    while True:
        decision, after = check(bucket, limits, now)
        if decision.allowed:
            bucket, count = after, count + 1
            continue
        now += decision.retry_after_ms
        if now > end:
            return count


@given(per_minute, gaps)
def test_waiting_retry_after_is_always_enough(limit: int, steps: list[int]) -> None:
    limits = Limits(per_minute=limit, per_day=10**9)
    bucket = EMPTY_BUCKET
    now = START
    for step in steps:
        now += step
        decision, after = check(bucket, limits, now)
        if decision.allowed:
            bucket = after
            continue
        retry, _ = check(bucket, limits, now + decision.retry_after_ms)
        assert retry.allowed
        # and in whole seconds, as the header says
        assert check(bucket, limits, now + decision.retry_after * 1000)[0].allowed


@given(st.integers(min_value=1, max_value=400), st.integers(min_value=1, max_value=120))
@settings(max_examples=25, deadline=None)
def test_no_drift_over_long_runs(limit: int, minutes: int) -> None:
    """A client always retrying at the earliest moment gets exactly burst + L per minute."""
    limits = Limits(per_minute=limit, per_day=10**9)
    admitted = run_from(EMPTY_BUCKET, limits, START, START + minutes * MINUTE_MS)
    assert admitted == burst_capacity(limit) + limit * minutes


@given(st.integers(min_value=1, max_value=50))
def test_daily_quota_resets_at_utc_midnight(per_day: int) -> None:
    limits = Limits(per_minute=1_000_000, per_day=per_day)
    midnight = (START // DAY_MS + 1) * DAY_MS
    bucket = EMPTY_BUCKET
    for _ in range(per_day):
        decision, bucket = check(bucket, limits, midnight - 5_000)
        assert decision.allowed
    decision, after = check(bucket, limits, midnight - 5_000)
    assert not decision.allowed
    assert decision.daily_exceeded
    assert decision.retry_after == 5
    assert after == bucket
    assert check(bucket, limits, midnight)[0].allowed


def test_headers_values_for_a_fresh_key() -> None:
    limits = Limits(per_minute=100, per_day=10_000)
    decision, _ = check(EMPTY_BUCKET, limits, START)
    assert decision.limit == 100
    assert decision.remaining == 100  # 116 burst tokens left, shown within L
    assert decision.reset * 1000 >= START
    assert decision.daily_remaining == 9_999


def test_remaining_and_reset_after_a_burst() -> None:
    limits = Limits(per_minute=60, per_day=10_000)  # one per second, capacity 70
    bucket = EMPTY_BUCKET
    for _ in range(20):
        decision, bucket = check(bucket, limits, START)
    assert decision.remaining == 50
    # back at 60 remaining once 10 tokens have refilled: 10 seconds
    assert decision.reset == (START + 10_000) // 1000


def test_plans_and_overrides() -> None:
    assert effective_limits("standard", None, None) == Limits(100, 10_000)
    assert effective_limits("professional", None, None) == Limits(300, 50_000)
    assert effective_limits("standard", None, {"per_minute": 500}) == Limits(100, 10_000)
    assert effective_limits("standard", None, {"per_minute": 10}) == Limits(10, 10_000)
    custom = Limits(2_000, 1_000_000)
    assert effective_limits("enterprise", custom, None) == custom
    assert effective_limits("enterprise", custom, {"per_minute": 5_000}).per_minute == 5_000
    with pytest.raises(ValidationFailed, match="between 1 and"):
        Limits(per_minute=0, per_day=10)
    with pytest.raises(ValidationFailed, match="daily limit"):
        Limits(per_minute=10, per_day=-1)
