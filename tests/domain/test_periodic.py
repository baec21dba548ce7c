"""The background loop behind the change feed, the webhook sender and anomaly detection:
stopping never cuts a step in half (a half-done database transaction), only an overstaying
one; a failing step does not end the loop."""

from __future__ import annotations

import asyncio

from keyplane.services.periodic import Periodic


async def test_stop_lets_the_step_under_way_finish() -> None:
    events: list[str] = []
    started = asyncio.Event()

    async def step() -> None:
        events.append("begin")
        started.set()
        await asyncio.sleep(0.2)  # a transaction in progress
        events.append("commit")

    loop = Periodic(step, 0.01, name="t", failed_event="t_failed", first_delay=0)
    loop.start()
    await started.wait()
    await loop.stop()
    assert events == ["begin", "commit"]
    assert not loop.running


async def test_a_step_that_overstays_the_grace_is_cancelled() -> None:
    cancelled = asyncio.Event()
    started = asyncio.Event()

    async def step() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    loop = Periodic(step, 0.01, name="t", failed_event="t_failed", first_delay=0, grace=0.1)
    loop.start()
    await started.wait()
    await asyncio.wait_for(loop.stop(), 2)
    assert cancelled.is_set()


async def test_failures_do_not_end_the_loop_and_the_interval_is_kept() -> None:
    # Counted by events and the loop's clock, not by how many steps fit in a sleep: a loaded
    # CI machine (and the logged traceback of the failure) can stretch any wall-clock window.
    interval = 0.05
    clock = asyncio.get_running_loop().time
    started_at = clock()
    times: list[float] = []
    third = asyncio.Event()

    async def step() -> None:
        times.append(clock())
        if len(times) == 3:
            third.set()
        if len(times) == 1:
            raise RuntimeError("database hiccup")

    loop = Periodic(step, interval, name="t", failed_event="t_failed")
    loop.start()
    await asyncio.sleep(0)
    assert times == []  # the first step comes one interval after start
    await asyncio.wait_for(third.wait(), 10)  # the failure did not end the loop
    await loop.stop()
    # Each step waits a whole interval after the one before, failed or not: no busy retrying.
    gaps = [b - a for a, b in zip([started_at, *times], times, strict=False)]
    assert all(gap >= interval * 0.9 for gap in gaps), gaps


async def test_stop_before_the_first_step_returns_at_once() -> None:
    async def step() -> None:
        raise AssertionError("never runs")

    loop = Periodic(step, 30, name="t", failed_event="t_failed")
    loop.start()
    await asyncio.wait_for(loop.stop(), 1)
