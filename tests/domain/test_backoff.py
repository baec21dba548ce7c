"""Retry delays for webhook deliveries."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from keyplane.domain.backoff import MAX_DELAY, retry_delay


@given(
    attempt=st.integers(1, 200),
    base=st.floats(0.01, 600),
    unit=st.floats(0, 1, exclude_max=True),
)
def test_delay_is_half_to_all_of_the_doubling_nominal_and_capped(
    attempt: int, base: float, unit: float
) -> None:
    nominal = min(MAX_DELAY, base * 2.0 ** min(attempt - 1, 60))
    delay = retry_delay(attempt, base, unit)
    assert nominal / 2 - 1e-9 <= delay <= nominal + 1e-9
    assert delay <= MAX_DELAY


@given(attempt=st.integers(1, 10), unit=st.floats(0, 1, exclude_max=True))
def test_delays_grow_with_attempts(attempt: int, unit: float) -> None:
    # Even the shortest next delay is no shorter than the longest previous one.
    assert retry_delay(attempt + 1, 10, 0.0) >= retry_delay(attempt, 10, unit) - 1e-9
