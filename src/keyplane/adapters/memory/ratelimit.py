"""In-process rate limiting: exact GCRA per budget, for single-process installs."""

from __future__ import annotations

import time
from collections.abc import Callable

from keyplane.adapters.memory.lru import LRUCache
from keyplane.domain.ratelimit import Bucket, Decision, Limits, check, combine
from keyplane.services.ratelimit import NO_VERSIONS, Versions

_EMPTY = Bucket()


class MemoryRateLimiter:
    def __init__(
        self, max_buckets: int = 1_000_000, clock: Callable[[], float] = time.time
    ) -> None:
        # Bounded: a bucket evicted after long idleness has fully refilled anyway, unless its
        # daily count matters; a million buckets keep that from happening in practice.
        self._buckets: LRUCache[str, Bucket] = LRUCache(max_buckets)
        self.clock = clock

    async def hit(
        self, org_id: int, budgets: list[tuple[str, Limits]], key_id: str
    ) -> tuple[Decision, Versions]:
        return self.decide(budgets), NO_VERSIONS

    def peek(self, budgets: list[tuple[str, Limits]]) -> Decision:
        """The decision a request would get, without counting it."""
        return self.decide(budgets, count=False)

    def decide(self, budgets: list[tuple[str, Limits]], *, count: bool = True) -> Decision:
        now_ms = int(self.clock() * 1000)
        if len(budgets) == 1:  # the common case: one budget, no combining
            bucket_id, limits = budgets[0]
            bucket = self._buckets.get(bucket_id)
            decision, after = check(bucket or _EMPTY, limits, now_ms)
            if decision.allowed and count:
                if bucket is None:
                    self._buckets.put(bucket_id, after)
                else:
                    self._buckets.replace(bucket_id, after)
            return decision
        decisions = []
        updates = []
        for bucket_id, limits in budgets:
            decision, after = check(self._buckets.get(bucket_id) or _EMPTY, limits, now_ms)
            decisions.append(decision)
            updates.append((bucket_id, after))
        combined = combine(decisions) if len(decisions) > 1 else decisions[0]
        if combined.allowed and count:
            for bucket_id, after in updates:
                self._buckets.put(bucket_id, after)
        return combined

    async def publish(
        self, org_id: int, key_versions: dict[str, int], access_version: int | None
    ) -> None:
        return None  # one process: caches are invalidated directly

    async def close(self) -> None:
        return None
