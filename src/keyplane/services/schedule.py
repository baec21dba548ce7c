"""Jobs that concern the whole deployment (anomaly detection, expiry reminders, housekeeping)
run once per interval, however many API processes there are.

Every process ticks; at each tick it claims the job's turn with a conditional update on its
`job_runs` row ("started before now - interval"), and only the process whose update changed
the row runs the step. No leader to elect or lose: a process that dies mid-step just leaves
the next turn to whoever ticks after the interval; a step that fails has used its turn all
the same (the next comes an interval later). The jobs stay safe to run twice (their writes
are deduplicated): hosts whose clocks disagree by less than an interval shift the turns a
little; a start stamped more than an interval ahead is taken for a wrong clock and ignored.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keyplane.adapters.sql.database import dialect_insert
from keyplane.adapters.sql.models import JobRun
from keyplane.adapters.sql.repositories import utcnow
from keyplane.services.periodic import Periodic


async def claim_turn(db: AsyncSession, job: str, every: timedelta, now: datetime) -> bool:
    """True when this caller should run `job` now: nobody started it within `every`. The
    claim is recorded when the transaction commits; of concurrent callers exactly one wins."""
    claimed = await db.execute(
        update(JobRun)
        .where(
            JobRun.name == job,
            # A start stamped further ahead than an interval came from a clock that was
            # wrong (or still is): it must not hold the job back until then.
            or_(JobRun.started_at <= now - every, JobRun.started_at > now + every),
        )
        .values(started_at=now)
    )
    if claimed.rowcount == 1:  # type: ignore[attr-defined]
        return True
    # The job's first run anywhere: its row does not exist yet (or another caller has it).
    inserted = await db.execute(
        dialect_insert(db)(JobRun)
        .values(name=job, started_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return inserted.rowcount == 1  # type: ignore[attr-defined, no-any-return]


class DeploymentJob:
    """`step` every `every_seconds` across the deployment: each process ticks at that pace and
    runs the step only on its turn. A process's first tick comes `first_delay` seconds after
    it starts (default: one interval)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        name: str,
        every_seconds: float,
        step: Callable[[], Awaitable[object]],
        *,
        first_delay: float | None = None,
    ) -> None:
        self.name = name
        # What this process did, for /metrics: turns it took and steps that failed.
        self.runs = 0
        self.failures = 0
        self.last_run_at = 0.0  # unix seconds; 0: never in this process
        self._sessions = sessions
        self._every = timedelta(seconds=every_seconds)
        self._step = step
        self._loop = Periodic(
            self.tick,
            every_seconds,
            name=f"keyplane-{name}",
            failed_event=f"{name}_failed",
            first_delay=first_delay,
        )

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    @property
    def stopping(self) -> bool:
        """True once this process is stopping: a long step should end at its next pause."""
        return self._loop.stopping

    async def tick(self) -> bool:
        """Run the step if it is this process's turn; True when it ran."""
        async with self._sessions() as db:
            mine = await claim_turn(db, self.name, self._every, utcnow())
            await db.commit()
        if mine:
            self.runs += 1
            self.last_run_at = time.time()
            try:
                await self._step()
            except Exception:
                self.failures += 1
                raise
        return mine
