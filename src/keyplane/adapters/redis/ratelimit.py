"""Rate limiting on Redis: one Lua script per request, one round trip, Redis server time.

The script drains and checks every budget of the request, counts it only if all admit it, and
returns the drained state plus the key's and the organization's change versions; the decision
itself is computed in Python by the same `domain.ratelimit.check` the memory backend uses, so
both backends share one implementation of the maths.

Calls arriving while a round trip is under way are coalesced into the next one, a pipeline:
many concurrent requests cost one round trip together. Decisions travel on one dedicated
connection (`channel.Channel`, which explains why), and none waits longer than the timeout.
All keys of one call share the hash tag `{o:<org>}`, so the script runs on one shard of a
Redis Cluster.
"""

from __future__ import annotations

import asyncio
import hashlib
from functools import lru_cache
from typing import Any

import structlog
from hiredis import pack_command
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError

from keyplane.adapters.redis.channel import Channel
from keyplane.domain.ratelimit import Decision, Limits, bucket_state, check, combine
from keyplane.services.ratelimit import LimiterUnavailable, Versions

log = structlog.get_logger(__name__)

HIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
local T = 60000
local DAY = 86400000
local day = math.floor(now / DAY)
local out = {now}
local ok = true
local state = {}
for i = 1, n do
  local per_minute = tonumber(ARGV[i * 3 - 1])
  local per_day = tonumber(ARGV[i * 3])
  local capacity = tonumber(ARGV[i * 3 + 1])
  local h = redis.call('HMGET', KEYS[i], 'd', 's', 'y', 'c')
  local debt = tonumber(h[1]) or 0
  local elapsed = now - (tonumber(h[2]) or 0)
  if elapsed > 0 then
    if elapsed * per_minute >= debt then debt = 0 else debt = debt - elapsed * per_minute end
  end
  local count = tonumber(h[4]) or 0
  local new_day = tonumber(h[3]) ~= day
  if new_day then count = 0 end
  if debt + T > capacity * T or count >= per_day then ok = false end
  state[i] = {debt, count, new_day}
  out[#out + 1] = debt
  out[#out + 1] = count
end
if ok then
  for i = 1, n do
    redis.call('HSET', KEYS[i], 'd', state[i][1] + T, 's', now, 'y', day, 'c', state[i][2] + 1)
    -- The expiry depends only on the day: set once per bucket and day, not on every hit.
    if state[i][3] then redis.call('PEXPIREAT', KEYS[i], (day + 1) * DAY + 60000) end
  end
end
local versions = redis.call('MGET', KEYS[n + 1], KEYS[n + 2])
out[#out + 1] = tonumber(versions[1]) or 0
out[#out + 1] = tonumber(versions[2]) or 0
return out
"""

# Versions only move forward, whatever order concurrent publishers arrive in.
PUBLISH = """
for i = 1, #KEYS do
  if tonumber(redis.call('GET', KEYS[i]) or 0) < tonumber(ARGV[i]) then
    redis.call('SET', KEYS[i], ARGV[i], 'EX', 86400)
  end
end
return 0
"""


def _tag(org_id: int) -> str:
    return f"kp:{{o:{org_id}}}"


# What SCRIPT LOAD answers for it: known before Redis is asked, so a call never waits for a
# load; a Redis that lacks the script (new, or restarted) says NOSCRIPT and is sent it then.
HIT_SHA = hashlib.sha1(HIT.encode(), usedforsecurity=False).hexdigest()


def _stored_name(bucket: str) -> str:
    """A key's own budget is named by the key's id ("key_…", no colon; shared ones are
    "p:<project>" and "o:<org>"); Redis keeps it as "k:<id>", the name it had before
    2026-12-07, so that an upgrade does not hand every key a fresh daily quota."""
    return bucket if ":" in bucket else "k:" + bucket


@lru_cache(maxsize=16_384)
def _hit_command(org_id: int, key_id: str, budgets: tuple[tuple[str, Limits], ...]) -> bytes:
    """One decision's EVALSHA, packed. The same bytes for every request of a key: packing
    them (hiredis formats every argument) cost more client CPU than the rest of the decision
    in Python, so they are packed once per key (bounded: a key evicted is packed again)."""
    tag = _tag(org_id)
    keys = [f"{tag}:b:{_stored_name(bucket)}" for bucket, _ in budgets]
    keys += [f"{tag}:v:{key_id}", f"{tag}:acc"]
    args = [len(budgets)]
    for _, limits in budgets:
        args += [limits.per_minute, limits.per_day, limits.capacity]
    command: tuple[Any, ...] = ("EVALSHA", HIT_SHA, len(keys), *keys, *args)
    packed: bytes = pack_command(command)
    return packed


DEFAULT_TIMEOUT = 1.0  # seconds a decision may wait for Redis before it counts as down

# A call waiting for the next round trip: its command, its waiter, its deadline (loop time).
_Waiting = tuple[bytes, "asyncio.Future[list[int]]", float]


class RedisRateLimiter:
    def __init__(
        self, client: Redis, *, fail_open: bool = True, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.client = client  # scripts loading, version publishing, health
        self.channel = Channel(client)  # the decisions
        self.fail_open = fail_open
        self.timeout = timeout
        self.failures = 0
        self._pending: list[_Waiting] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy = False  # a round trip (or a batch's sender) is under way

    @classmethod
    def from_url(
        cls, url: str, *, fail_open: bool = True, timeout: float = DEFAULT_TIMEOUT
    ) -> RedisRateLimiter:
        # No socket_timeout (redis-py's default is 5 s, a `wait_for` around every read and
        # write): every call below runs under a deadline of `self.timeout` instead, and a
        # connection whose command was cancelled half-way is dropped (adapters/redis/channel).
        client = Redis.from_url(
            url, socket_timeout=None, socket_connect_timeout=timeout, health_check_interval=30
        )
        return cls(client, fail_open=fail_open, timeout=timeout)

    async def hit(
        self, org_id: int, budgets: list[tuple[str, Limits]], key_id: str
    ) -> tuple[Decision, Versions] | None:
        """The decision, or None when Redis is unreachable and the limiter fails open."""
        try:
            raw = await self._call(_hit_command(org_id, key_id, tuple(budgets)))
        except (RedisError, OSError) as error:  # OSError includes TimeoutError
            self.failures += 1
            log.warning("rate_limiter_unavailable", error=type(error).__name__)
            if self.fail_open:
                return None
            raise LimiterUnavailable(
                "Rate limiting is temporarily unavailable and this server is configured to "
                "refuse requests meanwhile; retry in a few seconds."
            ) from None
        now_ms = int(raw[0])
        decisions = []
        for index, (_, limits) in enumerate(budgets):
            state = bucket_state(int(raw[1 + 2 * index]), now_ms, int(raw[2 + 2 * index]))
            decisions.append(check(state, limits, now_ms)[0])
        decision = combine(decisions) if len(decisions) > 1 else decisions[0]
        return decision, Versions(key=int(raw[-2]), access=int(raw[-1]))

    # --- coalescing --------------------------------------------------------------------------
    # One round trip at a time on the channel. Idle, a call goes out at once; calls arriving
    # while a round trip is under way wait together and go out as one pipeline as soon as it
    # is back (and so on while more arrive), so under load each round trip carries everything
    # that arrived during the previous one, with one task per batch rather than per call.
    # Deadlines: a call sent at once has its own; a batch has its earliest waiter's, so no
    # call waits longer than `timeout` and a waiter needs no timer of its own (a timer per
    # call was a tenth of a decision's client CPU under load). A batch's waiters all arrived
    # after the round trip before it went out, so their deadlines fall after that round
    # trip's own: a batch never starts already out of time.
    async def _call(self, command: bytes) -> list[int]:
        if not self._busy:
            self._busy = True
            try:
                async with asyncio.timeout(self.timeout):
                    return await self._direct(command)
            finally:
                self._busy = False
                if self._pending:
                    self._start_sender()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[int]] = loop.create_future()
        self._pending.append((command, future, loop.time() + self.timeout))
        if not self._busy:
            self._start_sender()
        return await future

    def _start_sender(self) -> None:
        self._busy = True
        task = asyncio.get_running_loop().create_task(self._send_pending())
        # The loop keeps only a weak reference to tasks: hold one until it is done.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_pending(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                # Waiters gone meanwhile (their request was cancelled) are not sent for.
                batch = [waiting for waiting in batch if not waiting[1].done()]
                if batch:
                    await self._run(batch)
        finally:
            self._busy = False
            if self._pending:  # left by a cancellation (shutdown): tell their waiters
                for _, future, _ in self._pending:
                    if not future.done():
                        future.set_exception(RedisError("cancelled"))
                self._pending = []

    async def _direct(self, command: bytes) -> list[int]:
        try:
            result: list[int] = await self.channel.call(command)
        except NoScriptError:  # a new Redis, or one restarted: it lost its scripts
            await self.client.script_load(HIT)
            result = await self.channel.call(command)
        return result

    async def _run(self, batch: list[_Waiting]) -> None:
        try:
            async with asyncio.timeout_at(min(deadline for _, _, deadline in batch)):
                results = await self._round_trip(batch)
                if any(isinstance(r, NoScriptError) for r in results):
                    await self.client.script_load(HIT)
                    results = await self._round_trip(batch)
        except BaseException as error:  # every waiter must hear about it
            failure = error if isinstance(error, Exception) else RedisError("cancelled")
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(failure)
            if not isinstance(error, Exception):
                raise  # cancelled (shutdown): let it finish the task
            return
        for (_, future, _), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _round_trip(self, batch: list[_Waiting]) -> list[Any]:
        if len(batch) == 1:  # the common case needs no pipeline
            try:
                return [await self.channel.call(batch[0][0])]
            except NoScriptError as error:
                return [error]
        return await self.channel.pipeline([command for command, _, _ in batch])

    # --- versions ----------------------------------------------------------------------------
    async def publish(
        self, org_id: int, key_versions: dict[str, int], access_version: int | None
    ) -> None:
        tag = _tag(org_id)
        keys = [f"{tag}:v:{key_id}" for key_id in key_versions]
        args = list(key_versions.values())
        if access_version is not None:
            keys.append(f"{tag}:acc")
            args.append(access_version)
        if not keys:
            return
        try:
            async with asyncio.timeout(self.timeout):
                await self.client.eval(PUBLISH, len(keys), *keys, *args)
        except (RedisError, OSError) as error:
            # Other instances still learn it from the change feed within a poll interval.
            self.failures += 1
            log.warning("version_publish_failed", error=type(error).__name__)

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(self.timeout):
                return bool(await self.client.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self.channel.close()
        await self.client.aclose()
