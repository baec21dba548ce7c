"""The bounded in-process structures that keep memory flat whatever the number of keys."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from keyplane.adapters.memory.lru import IndexedLRUCache, LRUCache, RecentSet


@given(st.integers(min_value=1, max_value=40), st.lists(st.integers(0, 100), max_size=300))
def test_a_recent_set_holds_the_latest_members_within_its_bound(
    maxsize: int, added: list[int]
) -> None:
    recent: RecentSet[int] = RecentSet(maxsize)
    for n, member in enumerate(added, start=1):
        recent.add(member)
        latest = added[max(0, n - max(1, maxsize // 2)) : n]
        assert all(m in recent for m in latest)
        assert len(recent) <= max(maxsize, 2)
    assert not any(m in recent for m in set(range(101)) - set(added))


@given(st.integers(min_value=1, max_value=40), st.lists(st.integers(0, 100), max_size=300))
def test_an_lru_cache_keeps_the_most_recently_used(maxsize: int, used: list[int]) -> None:
    cache: LRUCache[int, int] = LRUCache(maxsize)
    for n in used:
        if cache.get(n) is None:
            cache.put(n, n * 2)
        assert len(cache) <= maxsize
    recent: list[int] = []
    for n in reversed(used):
        if n not in recent:
            recent.append(n)
    for n in recent[:maxsize]:
        assert cache.get(n) == n * 2


@given(
    st.integers(min_value=1, max_value=20),
    st.lists(
        st.one_of(
            st.tuples(st.just("put"), st.integers(0, 30), st.integers(0, 10)),
            st.tuples(st.just("drop"), st.integers(0, 10), st.just(0)),
            st.tuples(st.just("get"), st.integers(0, 30), st.just(0)),
            st.tuples(st.just("pop"), st.integers(0, 30), st.just(0)),
            st.tuples(st.just("evict"), st.integers(0, 10), st.just(0)),
            st.tuples(st.just("clear"), st.just(0), st.just(0)),
        ),
        max_size=200,
    ),
)
def test_an_indexed_cache_drops_by_index_and_its_index_stays_exact(
    maxsize: int, operations: list[tuple[str, int, int]]
) -> None:
    # Tokens map to key ids; a key changed elsewhere is dropped by its id (revocation must
    # reach every cached token of it), whatever evictions happened before.
    cache: IndexedLRUCache[int, tuple[int, int], int] = IndexedLRUCache(maxsize, lambda v: v[0])
    for operation, a, b in operations:
        if operation == "put":
            cache.put(a, (b, a))
        elif operation == "get":
            cache.get(a)
        elif operation == "pop":
            cache.pop(a)
            assert a not in cache._data
        elif operation == "evict":
            cache.evict_where(lambda _k, v, a=a: v[0] == a)
            assert all(v[0] != a for v in cache._data.values())
        elif operation == "clear":
            cache.clear()
            assert len(cache) == 0
        else:
            cache.pop_by_index(a)
            assert all(v[0] != a for v in cache._data.values())
        assert len(cache) <= maxsize
        held = {k: v[0] for k, v in cache._data.items()}
        assert {ident: k for k, ident in held.items()} == cache._by_index
