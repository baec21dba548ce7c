"""A step run every few seconds in the background (the change feed, the webhook sender, anomaly
detection), and stopped without cutting a step in half.

Why not `task.cancel()`: a step cancelled half-way through a database transaction can leave
its connection mid-transaction while it is handed back; on SQLite that connection's write lock
then blocks every other writer (the final usage flush of a shutdown waited 30 s for it and
failed). Stopping therefore asks the loop to end after the step under way and cancels only a
step that overstays `grace` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)

DEFAULT_GRACE = 5.0


class Periodic:
    def __init__(
        self,
        step: Callable[[], Awaitable[object]],
        interval: float,
        *,
        name: str,
        failed_event: str,
        first_delay: float | None = None,
        grace: float = DEFAULT_GRACE,
    ) -> None:
        self._step = step
        self._interval = interval
        self._name = name
        self._failed_event = failed_event
        # Seconds before the first step: 0 runs it at start; None waits one interval.
        self._first_delay = interval if first_delay is None else first_delay
        self._grace = grace
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), self._grace)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        if self._first_delay > 0 and await self._stopped_within(self._first_delay):
            return
        while True:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database hiccup must not end the loop; the next step retries
                log.exception(self._failed_event)
            if await self._stopped_within(self._interval):
                return

    async def _stopped_within(self, seconds: float) -> bool:
        """Wait `seconds`, or less if stopping; True when the loop should end."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()
