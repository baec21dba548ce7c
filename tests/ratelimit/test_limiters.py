"""The two limiter backends behave identically (DESIGN §5); Redis in one round trip."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aredis
from redis.asyncio.connection import AbstractConnection

from keyplane.adapters.memory.ratelimit import MemoryRateLimiter
from keyplane.adapters.redis.ratelimit import RedisRateLimiter
from keyplane.domain.ratelimit import Limits
from keyplane.services.ratelimit import LimiterUnavailable, RateLimiter

FAST = Limits(per_minute=600, per_day=1_000_000)  # T = 100 ms, capacity 700
# T = 1 s: slow enough that the test's own run time refills nothing.
STEADY = Limits(per_minute=60, per_day=1_000_000)  # capacity 70


@pytest.fixture
async def limiter(limiter_backend: str | None) -> AsyncIterator[RateLimiter]:
    backend: RateLimiter = (
        RedisRateLimiter.from_url(limiter_backend) if limiter_backend else MemoryRateLimiter()
    )
    yield backend
    await backend.close()


async def _admitted(limiter: RateLimiter, budgets: list[tuple[str, Limits]], n: int) -> int:
    count = 0
    for _ in range(n):
        outcome = await limiter.hit(1, budgets, "key_a")
        assert outcome is not None
        count += outcome[0].allowed
    return count


async def test_burst_then_refill(limiter: RateLimiter) -> None:
    budgets = [("k:key_a", STEADY)]
    assert await _admitted(limiter, budgets, 80) == 70
    outcome = await limiter.hit(1, budgets, "key_a")
    assert outcome is not None
    decision = outcome[0]
    assert not decision.allowed
    assert 0 < decision.retry_after_ms <= 1000
    assert decision.retry_after == 1
    assert decision.remaining == 0
    await asyncio.sleep(decision.retry_after_ms / 1000 + 0.02)
    assert await _admitted(limiter, budgets, 1) == 1


async def test_all_limits_are_checked_before_any_is_counted(limiter: RateLimiter) -> None:
    tight = Limits(per_minute=600, per_day=3)
    shared = [("p:1", STEADY), ("k:key_a", tight)]
    assert await _admitted(limiter, shared, 5) == 3
    # The rejected requests did not count against the shared budget: it still has 67.
    assert await _admitted(limiter, [("p:1", STEADY)], 70) == 67


async def test_daily_quota(limiter: RateLimiter) -> None:
    budgets = [("k:daily", Limits(per_minute=600, per_day=2))]
    assert await _admitted(limiter, budgets, 2) == 2
    outcome = await limiter.hit(1, budgets, "key_a")
    assert outcome is not None
    decision = outcome[0]
    assert decision.daily_exceeded
    assert decision.retry_after <= 86_400
    assert decision.daily_remaining == 0


async def test_concurrent_requests_never_exceed_the_capacity(limiter: RateLimiter) -> None:
    budgets = [("k:race", Limits(per_minute=60, per_day=1_000_000))]  # capacity 70
    outcomes = await asyncio.gather(*(limiter.hit(1, budgets, "key_a") for _ in range(200)))
    assert sum(o is not None and o[0].allowed for o in outcomes) == 70


async def test_redis_decides_in_one_round_trip_and_coalesces(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = RedisRateLimiter.from_url(redis_url)
    admin = aredis.Redis.from_url(redis_url)
    try:
        await limiter.hit(1, [("k:warm", FAST)], "key_a")  # loads the script
        await admin.config_resetstat()
        # One round trip = one write of a request (or of a whole pipeline) whose reply is then
        # awaited: every write of redis-py's connections goes through send_packed_command.
        writes = 0
        original = AbstractConnection.send_packed_command

        async def counted(self: AbstractConnection, *args: Any, **kwargs: Any) -> None:
            nonlocal writes
            writes += 1
            await original(self, *args, **kwargs)

        monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
        for _ in range(10):  # sequential: one round trip each
            await limiter.hit(1, [("k:one", FAST), ("p:1", FAST)], "key_a")
        assert writes == 10
        await asyncio.gather(*(limiter.hit(1, [("k:many", FAST)], "key_a") for _ in range(50)))
        # Fifty concurrent decisions: the first goes out at once, the 49 arriving while it is
        # in flight share one pipeline.
        assert writes == 12
        stats = await admin.info("commandstats")
        commands = {name.removeprefix("cmdstat_"): v["calls"] for name, v in stats.items()}
        assert commands.pop("evalsha") == 60
        # Everything else ran inside the script, on the server, in the same round trip.
        inside_script = {"time", "hmget", "hset", "pexpireat", "mget"}
        # A bucket's expiry is set once per day (three buckets here), not on every hit.
        assert commands["pexpireat"] == 3
        commands.pop("config|resetstat", None)
        # A pipeline may open one more connection, greeted once, not per request.
        for greeting in ("hello", "select", "ping", "client|setinfo"):
            commands.pop(greeting, None)
        assert set(commands) <= inside_script, f"commands besides the script: {commands}"
    finally:
        await limiter.close()
        await admin.aclose()


async def test_redis_calls_arriving_during_a_round_trip_share_the_next_one(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load each round trip carries everything that arrived during the previous one:
    waves of concurrent requests cost one write each, never one per request."""
    limiter = RedisRateLimiter.from_url(redis_url)
    await limiter.hit(1, [("k:warm", FAST)], "key_a")  # loads the script
    decisions_per_write: list[int] = []
    later: list[asyncio.Future[Any]] = []
    original = AbstractConnection.send_packed_command

    async def counted(self: AbstractConnection, command: Any, *args: Any, **kwargs: Any) -> None:
        decisions_per_write.append(bytes(command).count(b"EVALSHA"))
        if len(decisions_per_write) == 2:  # a pipeline is going out: 20 more calls arrive
            later.extend(
                asyncio.ensure_future(limiter.hit(1, [("k:wave", FAST)], "key_a"))
                for _ in range(20)
            )
        await original(self, command, *args, **kwargs)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    try:
        first = await asyncio.gather(
            *(limiter.hit(1, [("k:wave", FAST)], "key_a") for _ in range(30))
        )
        second = await asyncio.gather(*later)
        assert all(outcome is not None and outcome[0].allowed for outcome in first + second)
        assert decisions_per_write == [1, 29, 20]
    finally:
        await limiter.close()


async def test_redis_that_lost_its_scripts_is_sent_them_again(redis_url: str) -> None:
    """A Redis restarted (or replaced) has no scripts: the first call then, alone or in a
    batch, loads it and still gets its decision; nothing fails open."""
    limiter = RedisRateLimiter.from_url(redis_url, fail_open=False)
    admin = aredis.Redis.from_url(redis_url)
    budgets = [("k:lost", Limits(per_minute=1_000, per_day=1_000))]
    try:
        assert await _admitted(limiter, budgets, 1) == 1
        await admin.script_flush()
        assert await _admitted(limiter, budgets, 1) == 1  # a call on its own
        await admin.script_flush()
        outcomes = await asyncio.gather(*(limiter.hit(1, budgets, "key_l") for _ in range(20)))
        assert [o is not None and o[0].allowed for o in outcomes] == [True] * 20
        outcome = await limiter.hit(1, budgets, "key_l")
        assert outcome is not None
        # The same bucket throughout, every call counted once: none lost to the reloads.
        assert outcome[0].daily_remaining == 1_000 - 23
        assert limiter.failures == 0
    finally:
        await limiter.close()
        await admin.aclose()


async def test_redis_returns_published_versions(redis_url: str) -> None:
    limiter = RedisRateLimiter.from_url(redis_url)
    try:
        outcome = await limiter.hit(7, [("k:v", FAST)], "key_v")
        assert outcome is not None
        assert outcome[1].key == 0
        await limiter.publish(7, {"key_v": 3}, 5)
        await limiter.publish(7, {"key_v": 2}, 4)  # late, older: ignored
        outcome = await limiter.hit(7, [("k:v", FAST)], "key_v")
        assert outcome is not None
        assert (outcome[1].key, outcome[1].access) == (3, 5)
    finally:
        await limiter.close()


async def test_redis_buckets_expire_after_their_day(redis_url: str) -> None:
    """A bucket is kept until a minute after its UTC day ends (its daily count is useless
    afterwards): the expiry is set with the day's first hit and still there after later
    ones, so idle keys never pile up in Redis."""
    limiter = RedisRateLimiter.from_url(redis_url)
    admin = aredis.Redis.from_url(redis_url)
    try:
        for _ in range(3):
            assert await limiter.hit(9, [("k:ttl", FAST)], "key_t") is not None
        expires_ms = await admin.pexpiretime("kp:{o:9}:b:k:ttl")
        seconds, micros = await admin.time()
        now_ms = seconds * 1000 + micros // 1000
        day_end = (now_ms // 86_400_000 + 1) * 86_400_000
        assert expires_ms == day_end + 60_000
    finally:
        await limiter.close()
        await admin.aclose()


@pytest.mark.parametrize("fail_open", [True, False])
async def test_redis_down_fails_open_or_closed(fail_open: bool) -> None:
    limiter = RedisRateLimiter.from_url("redis://127.0.0.1:1/0", fail_open=fail_open)
    try:
        if fail_open:
            assert await limiter.hit(1, [("k:x", FAST)], "key_x") is None
        else:
            with pytest.raises(LimiterUnavailable):
                await limiter.hit(1, [("k:x", FAST)], "key_x")
        assert limiter.failures == 1
    finally:
        await limiter.close()


async def test_a_redis_that_stops_answering_costs_at_most_the_timeout() -> None:
    """A Redis that accepts connections but never replies (a hung server, a black-holed
    network) must not hang requests: each decision fails open after the limiter's timeout,
    sequential or coalesced. (Recovery once Redis answers again: test_http_limits.)"""
    stalled: list[asyncio.StreamWriter] = []

    async def never_answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stalled.append(writer)

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    limiter = RedisRateLimiter.from_url(f"redis://127.0.0.1:{port}/0", timeout=0.3)
    try:
        started = asyncio.get_running_loop().time()
        assert await limiter.hit(1, [("k:hung", FAST)], "key_h") is None
        together = await asyncio.gather(
            *(limiter.hit(1, [("k:hung", FAST)], "key_h") for _ in range(5))
        )
        assert together == [None] * 5
        assert asyncio.get_running_loop().time() - started < 2.0
        assert limiter.failures == 6
    finally:
        await limiter.close()
        server.close()
        for writer in stalled:
            writer.close()


async def test_a_keys_own_budget_keeps_its_redis_name(redis_url: str) -> None:
    """A key's budget is named by its id; in Redis it stays "k:<id>", as before 2026-12-07,
    so that an upgrade does not give every key a fresh daily quota."""
    from keyplane.domain.keyformat import Mode
    from keyplane.domain.keys import KeyKind, VerifiedKey

    key = VerifiedKey(
        id="key_0123456789abcdef",
        kind=KeyKind.PROJECT,
        mode=Mode.LIVE,
        org_id=11,
        project_id=5,
        user_id=None,
        permissions=frozenset(),
        expires_at=None,
        revoked_at=None,
    )
    limiter = RedisRateLimiter.from_url(redis_url)
    admin = aredis.Redis.from_url(redis_url)
    try:
        assert await limiter.hit(key.org_id, key.budgets(5), key.id) is not None
        assert await admin.exists("kp:{o:11}:b:k:key_0123456789abcdef") == 1
    finally:
        await limiter.close()
        await admin.delete("kp:{o:11}:b:k:key_0123456789abcdef")
        await admin.aclose()
