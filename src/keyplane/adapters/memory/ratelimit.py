"""In-process rate limiting: exact GCRA per budget, for single-process installs."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from keyplane.domain.ratelimit import EMPTY_BUCKET, BucketState, Decision, Limits, check, combine
from keyplane.services.ratelimit import NO_VERSIONS, Versions


class MemoryRateLimiter:
    def __init__(
        self, max_buckets: int = 1_000_000, clock: Callable[[], float] = time.time
    ) -> None:
        # Bounded: a bucket evicted after long idleness has fully refilled anyway, unless its
        # daily count matters; a million buckets keep that from happening in practice.
        # A plain ordered dict rather than LRUCache: this is the hot path of every request,
        # and it needs neither hit counters nor a method call per access.
        self._buckets: OrderedDict[str, BucketState] = OrderedDict()
        self._max_buckets = max_buckets
        self.clock = clock

    async def hit(
        self, org_id: int, budgets: list[tuple[str, Limits]], key_id: str
    ) -> tuple[Decision, Versions]:
        if len(budgets) == 1:
            # Every request's path, and one budget is the common case: decided here rather
            # than through decide(), whose extra call and keyword cost ~15% of the decision.
            # _store inline, for the same reason.
            bucket_id, limits = budgets[0]
            buckets = self._buckets
            decision, after = check(
                buckets.get(bucket_id, EMPTY_BUCKET), limits, int(self.clock() * 1000)
            )
            if decision[0]:  # allowed
                buckets[bucket_id] = after
                buckets.move_to_end(bucket_id)
                if len(buckets) > self._max_buckets:
                    buckets.popitem(last=False)
            return decision, NO_VERSIONS
        return self.decide(budgets), NO_VERSIONS

    def peek(self, budgets: list[tuple[str, Limits]]) -> Decision:
        """The decision a request would get, without counting it."""
        return self.decide(budgets, count=False)

    def decide(self, budgets: list[tuple[str, Limits]], *, count: bool = True) -> Decision:
        now_ms = int(self.clock() * 1000)
        buckets = self._buckets
        if len(budgets) == 1:  # the common case: one budget, no combining
            bucket_id, limits = budgets[0]
            decision, after = check(buckets.get(bucket_id, EMPTY_BUCKET), limits, now_ms)
            if decision[0] and count:  # allowed
                self._store(bucket_id, after)
            return decision
        decisions = []
        updates = []
        for bucket_id, limits in budgets:
            decision, after = check(buckets.get(bucket_id, EMPTY_BUCKET), limits, now_ms)
            decisions.append(decision)
            updates.append((bucket_id, after))
        combined = combine(decisions) if len(decisions) > 1 else decisions[0]
        if combined.allowed and count:
            for bucket_id, after in updates:
                self._store(bucket_id, after)
        return combined

    def _store(self, bucket_id: str, bucket: BucketState) -> None:
        buckets = self._buckets
        buckets[bucket_id] = bucket
        buckets.move_to_end(bucket_id)
        if len(buckets) > self._max_buckets:
            buckets.popitem(last=False)

    async def publish(
        self, org_id: int, key_versions: dict[str, int], access_version: int | None
    ) -> None:
        return None  # one process: caches are invalidated directly

    async def close(self) -> None:
        return None
