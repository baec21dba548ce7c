"""A bounded least-recently-used mapping: memory stays bounded whatever the number of keys."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        try:
            value = self._data[key]
        except KeyError:
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def pop(self, key: K) -> V | None:
        return self._data.pop(key, None)

    def evict_where(self, predicate: Callable[[K, V], bool]) -> int:
        doomed = [k for k, v in self._data.items() if predicate(k, v)]
        for k in doomed:
            del self._data[k]
        return len(doomed)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class RecentSet(Generic[K]):
    """The members added most recently: at least the last `maxsize // 2`, never more than
    `maxsize` (or 2). Two plain sets in turn — the newer fills, then replaces the older — at
    under half an ordered dict's memory per member, for sets whose bound need not be exact."""

    def __init__(self, maxsize: int) -> None:
        self._generation = max(1, maxsize // 2)
        self._newer: set[K] = set()
        self._older: set[K] = set()

    def add(self, member: K) -> None:
        if len(self._newer) >= self._generation:
            self._older, self._newer = self._newer, set()
        self._newer.add(member)

    def __contains__(self, member: object) -> bool:
        return member in self._newer or member in self._older

    def __len__(self) -> int:
        """Entries held (a member re-added after a turn is held twice until the next)."""
        return len(self._newer) + len(self._older)
