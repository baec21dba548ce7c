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
        data = self._data
        data[key] = value
        data.move_to_end(key)
        if len(data) > self.maxsize:
            self._dropped(*data.popitem(last=False))

    def pop(self, key: K) -> V | None:
        value = self._data.pop(key, None)
        if value is not None:
            self._dropped(key, value)
        return value

    def evict_where(self, predicate: Callable[[K, V], bool]) -> int:
        doomed = [(k, v) for k, v in self._data.items() if predicate(k, v)]
        for k, v in doomed:
            del self._data[k]
            self._dropped(k, v)
        return len(doomed)

    def _dropped(self, key: K, value: V) -> None:
        """Called for every entry that leaves the cache, except through clear()."""

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class RecentSet(Generic[K]):
    """The members added most recently: at least the last `maxsize // 2` (or 1), never more
    than `maxsize` (or 2). Two plain sets in turn — the newer fills, then replaces the older — at
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


Ix = TypeVar("Ix", bound=Hashable)  # an index value


class IndexedLRUCache(LRUCache[K, V], Generic[K, V, Ix]):
    """An LRUCache that also drops entries by a second attribute of their value (`index`), in
    O(1): the verified-key cache is keyed by token, and a key changed elsewhere is named by
    its id — scanning 100,000 entries for it held the event loop for ~18 ms per change.
    At most one entry per index value is kept (putting a second drops the first), so the
    index is always exact."""

    def __init__(self, maxsize: int, index: Callable[[V], Ix]) -> None:
        super().__init__(maxsize)
        self._index = index
        self._by_index: dict[Ix, K] = {}

    def put(self, key: K, value: V) -> None:
        previous = self._data.get(key)
        if previous is not None:
            self._dropped(key, previous)
        ident = self._index(value)
        other = self._by_index.get(ident)
        if other is not None and other != key:
            self._data.pop(other, None)  # its index entry is replaced just below
        self._by_index[ident] = key
        super().put(key, value)

    def pop_by_index(self, ident: Ix) -> V | None:
        key = self._by_index.pop(ident, None)
        return None if key is None else self._data.pop(key, None)

    def clear(self) -> None:
        super().clear()
        self._by_index.clear()

    def _dropped(self, key: K, value: V) -> None:
        ident = self._index(value)
        if self._by_index.get(ident) == key:
            del self._by_index[ident]
