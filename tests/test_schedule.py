"""Deployment-wide jobs: however many processes tick, a job runs once per interval, on every
backend, and concurrent claims of one turn have exactly one winner."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from keyplane.adapters.sql.repositories import utcnow
from keyplane.runtime import Runtime
from keyplane.services import schedule
from keyplane.services.schedule import DeploymentJob, claim_turn
from keyplane.settings import Settings

EVERY = timedelta(minutes=5)
START = utcnow()


async def _claim(runtime: Runtime, job: str, moment_offset: timedelta) -> bool:
    async with runtime.sessions() as db:
        mine = await claim_turn(db, job, EVERY, START + moment_offset)
        await db.commit()
    return mine


async def test_a_turn_comes_once_per_interval(runtime: Runtime) -> None:
    assert await _claim(runtime, "job", timedelta(0))  # the first run anywhere
    assert not await _claim(runtime, "job", timedelta(0))
    assert not await _claim(runtime, "job", EVERY - timedelta(seconds=1))
    assert await _claim(runtime, "job", EVERY)
    assert not await _claim(runtime, "job", EVERY + timedelta(seconds=1))
    assert await _claim(runtime, "other job", EVERY)  # each job has its own turns


async def test_a_claim_rolled_back_is_not_taken(runtime: Runtime) -> None:
    async with runtime.sessions() as db:
        assert await claim_turn(db, "job", EVERY, START)
        await db.rollback()  # the process died before committing
    assert await _claim(runtime, "job", timedelta(0))


async def test_concurrent_claims_have_one_winner(runtime: Runtime, settings: Settings) -> None:
    others = [await Runtime.start(settings, migrate=False, background=False) for _ in range(3)]
    try:
        processes = [runtime, *others]
        for offset in (timedelta(0), EVERY):  # the first run (insert), then a turn (update)
            won = await asyncio.gather(*(_claim(p, "job", offset) for p in processes))
            assert sorted(won) == [False, False, False, True]
    finally:
        for other in others:
            await other.close()


async def test_a_start_stamped_by_a_clock_far_ahead_does_not_hold_the_job_back(
    runtime: Runtime,
) -> None:
    assert await _claim(runtime, "job", timedelta(days=1))  # a host whose clock ran a day ahead
    assert not await _claim(runtime, "job", timedelta(days=1) - EVERY)  # within one interval
    assert await _claim(runtime, "job", timedelta(0))  # the others' correct clocks go on
    assert not await _claim(runtime, "job", timedelta(seconds=1))


async def test_processes_ticking_together_run_the_step_once_per_interval(
    runtime: Runtime, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [START]
    monkeypatch.setattr(schedule, "utcnow", lambda: clock[0])
    other = await Runtime.start(settings, migrate=False, background=False)
    runs: list[str] = []
    try:

        def job(process: str, rt: Runtime) -> DeploymentJob:
            async def step() -> None:
                runs.append(process)

            return DeploymentJob(rt.sessions, "sweep", EVERY.total_seconds(), step)

        first, second = job("first", runtime), job("second", other)
        assert await first.tick()
        assert not await second.tick()
        clock[0] += EVERY / 2
        assert not await first.tick()
        assert not await second.tick()
        clock[0] += EVERY / 2
        assert await second.tick()
        assert not await first.tick()
    finally:
        await other.close()
    assert runs == ["first", "second"]
