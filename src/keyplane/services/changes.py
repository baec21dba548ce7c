"""The change feed: how a key edit, a revocation or a membership change made by any process
(another API worker, the CLI) reaches this process's caches within `change_poll_seconds`.

One indexed query per poll interval per process, whatever the request rate. The same loop
flushes last-used times and usage counts in one batch, so requests never write to the
database.
"""

from __future__ import annotations

import time
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keyplane.adapters.sql import repositories
from keyplane.services import auth_failures
from keyplane.services.auth import Verifier
from keyplane.services.periodic import Periodic
from keyplane.services.usage import UsageBuffer, add_clients, add_counts

log = structlog.get_logger(__name__)

# How long a late-committing event is still picked up (see repositories.changes_since).
LATE_COMMIT_WINDOW = timedelta(seconds=30)


class ChangeFeed:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        verifier: Verifier,
        *,
        poll_seconds: float,
        flush_seconds: float,
        usage: UsageBuffer | None = None,
    ) -> None:
        self._sessions = sessions
        self._verifier = verifier
        self._usage = usage or UsageBuffer()
        self._poll_seconds = poll_seconds
        self._flush_seconds = flush_seconds
        self._seq = 0
        self._applied: dict[int, float] = {}  # seq -> when applied, for the late-commit window
        self._loop = Periodic(
            self._tick, poll_seconds, name="keyplane-change-feed", failed_event="change_feed_failed"
        )
        self._last_flush = time.monotonic()
        # Wall-clock times of the last successful poll and flush, for the lag metrics.
        self.polled_at = time.time()
        self.flushed_at = time.time()

    async def start(self) -> None:
        async with self._sessions() as db:
            self._seq = await repositories.latest_change(db)
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        await self.flush()

    async def _tick(self) -> None:
        await self.poll()
        if self._verifier.failures is not None and self._verifier.failures.due:
            await self.report_failures()
        due = time.monotonic() - self._last_flush >= self._flush_seconds
        if due or self._usage.full:
            await self.flush()

    async def poll(self) -> int:
        """Apply every change since the last poll; returns how many were applied."""
        async with self._sessions() as db:
            changes = await repositories.changes_since(db, self._seq, LATE_COMMIT_WINDOW)
        now = time.monotonic()
        applied = 0
        for seq, scope, ref in changes:
            if seq in self._applied:
                continue
            if scope == "key":
                self._verifier.invalidate_key(ref)
            elif scope == "org":
                self._verifier.invalidate_org(int(ref))
            self._applied[seq] = now
            self._seq = max(self._seq, seq)
            applied += 1
        self.polled_at = time.time()
        horizon = now - 2 * LATE_COMMIT_WINDOW.total_seconds()
        self._applied = {s: t for s, t in self._applied.items() if t > horizon}
        return applied

    async def report_failures(self) -> int:
        """Write an alert and audit event for each failed-authentication burst detected since
        the last call; returns how many were new (other processes may have written some)."""
        monitor = self._verifier.failures
        if monitor is None:
            return 0
        bursts = monitor.drain(time.time())
        if not bursts:
            return 0
        try:
            async with self._sessions() as db:
                written = await auth_failures.report(db, monitor.window, bursts)
                await db.commit()
        except Exception:
            monitor.due.extend(slot for slot, _ in bursts)  # try again on the next poll
            raise
        return written

    async def flush(self) -> None:
        """Write last-used times and usage counts in one transaction. On failure both are put
        back for the next flush: nothing counted is lost."""
        self._last_flush = time.monotonic()
        used = self._verifier.drain_used()
        counts, clients = self._usage.drain()
        if not used and not counts and not clients:
            self.flushed_at = time.time()
            return
        try:
            async with self._sessions() as db:
                await repositories.touch_last_used(db, used.items())
                await add_counts(db, counts)
                await add_clients(db, clients)
                await db.commit()
            self.flushed_at = time.time()
        except BaseException:  # cancellation too: a flush interrupted by stop() keeps its data
            for key_id, at in used.items():  # newer uses win
                self._verifier.used[key_id] = max(at, self._verifier.used.get(key_id, 0.0))
            self._usage.restore(counts, clients)
            raise
