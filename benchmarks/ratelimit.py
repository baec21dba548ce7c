"""Cost of one rate-limiter decision, in memory and on Redis: keyplane vs the `limits` library.

What is measured, in one process (pinned to one CPU for the in-memory part where the OS
allows):

* Memory. keyplane: ``await MemoryRateLimiter().hit(1, [("k:bench", limits)], "key")``
  awaited in a tight loop from inside a coroutine, as the request gate awaits it (exact GCRA
  plus the daily count: ``domain.ratelimit.check``, one ``Decision`` and one bucket-state tuple per
  call, an LRU lookup and store). The peer: ``limits`` with its in-process storage,
  ``MovingWindowRateLimiter`` and ``FixedWindowRateLimiter``, ``.hit(RateLimitItemPerMinute(n),
  "bench")``. keyplane's API is async, so the like-for-like peer is ``limits.aio`` (async
  strategies over ``limits.aio.storage.MemoryStorage``); that is the comparison the target is
  judged on. The synchronous ``limits`` strategies are timed against keyplane's synchronous
  core, ``MemoryRateLimiter.decide``, for context.
  Every batch starts from a fresh limiter and times ``MEMORY_BATCH`` decisions on one key:
  limits high enough that all are admitted (the decision cost itself), and a variant whose
  limit admits exactly the first half of each batch and rejects the rest. A fresh limiter per
  batch keeps the moving window's list (one entry per admitted hit, prepended, so its cost
  grows with the traffic inside the window) at most ``MEMORY_BATCH`` long: without it that
  row's figure would depend on how long the benchmark runs.
* Redis (database 14 by default, flushed before and after). keyplane:
  ``RedisRateLimiter.from_url(url).hit(...)``: one Lua script per decision, and calls made in
  the same event-loop turn coalesced into one pipeline. The peer: ``limits.aio`` with
  ``limits.aio.storage.RedisStorage("async+redis://...")``, both with its default client
  (coredis, the ``limits[async-redis]`` extra) and with ``implementation="redispy"`` (the
  redis-py client keyplane uses), moving window (a Lua script) and fixed window (coredis:
  INCRBY, plus EXPIRE on the first hit of a window; redis-py: a Lua script). Two modes:
  sequential (one request at a time: latency per decision, where the number of round trips
  matters) and concurrent (``CONCURRENCY`` hits gathered per step, all on one key: what
  coalescing is for).
  Round trips are counted in a separate, untimed pass of ``COUNT_DECISIONS`` decisions after
  warm-up, on the client side: each call of redis-py's ``AbstractConnection
  .send_packed_command`` or coredis's ``BaseConnection._send_packed_command`` is one write of
  one request (or of a whole pipeline) whose reply the caller then awaits, i.e. one round
  trip. Server-side, ``INFO commandstats`` is read before and after the same pass: scripts run
  (EVAL/EVALSHA) and all commands per decision, the latter including the commands a Lua script
  runs inside Redis (which cost no round trip). commandstats is server-wide, so other clients
  of the same Redis would inflate those two columns (not the round-trip one).

Each operation runs in batches until a time box is used up; the tables report the whole run
(mean cost per operation, garbage collection included) and, as "best µs/op", the fastest
batch, the figure least disturbed by other processes. Ratios are keyplane ops/s over limits
ops/s; targets are judged on whole-run means against the faster ``limits`` strategy.

Run:  .venv/bin/python benchmarks/ratelimit.py   (or ``make bench``; takes about 45 s)
Options: ``--seconds S`` scales every time box; ``--redis-url URL`` (that database is
FLUSHDB'd); ``--concurrency N``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import coredis.connection
import redis.asyncio.connection
from limits import RateLimitItemPerMinute
from limits import strategies as sync_strategies
from limits.aio import strategies as aio_strategies
from limits.aio.storage import MemoryStorage as AioMemoryStorage
from limits.aio.storage import RedisStorage
from limits.storage import MemoryStorage
from redis.asyncio import Redis

from _common import Result, load_average, pin_to_one_core, unpin
from keyplane.adapters.memory.ratelimit import MemoryRateLimiter
from keyplane.adapters.redis.ratelimit import RedisRateLimiter
from keyplane.domain.ratelimit import Limits, burst_capacity

TARGET_MEMORY_RATIO = 2.0
TARGET_ROUND_TRIPS = 1.0
TARGET_REDIS_RATIO = 1.0
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
CONCURRENCY = 64
COUNT_DECISIONS = 640
MEMORY_BATCH = 2_100  # decisions per batch, each batch on a fresh limiter
HALF = MEMORY_BATCH // 2
ORG_ID = 1
BUCKET = "k:bench"
KEY_ID = "key"
IDENTIFIER = "bench"

# Everything admitted: far more than one run can spend.
ROOMY = Limits(per_minute=10**6, per_day=10**9)
# keyplane's burst capacity is L + ceil(L/6): L = 900 admits exactly HALF = 1,050 in a burst
# (a batch lasts milliseconds, so the GCRA drains well under one request meanwhile).
TIGHT = Limits(per_minute=900, per_day=10**9)
assert burst_capacity(TIGHT.per_minute) == HALF
PEER_ROOMY = RateLimitItemPerMinute(10**6)
PEER_TIGHT = RateLimitItemPerMinute(HALF)


Batch = Callable[[int], float]  # runs n operations, returns the seconds they took
AsyncBatch = Callable[[int], Awaitable[float]]


@dataclass
class Row:
    """One timed operation: `batch(size)` runs until `budget` seconds of it are measured."""

    key: str
    name: str
    size: int
    budget: float
    iterations: int = 0
    seconds: float = 0.0
    best: float = float("inf")

    def add(self, took: float) -> None:
        self.seconds += took
        self.iterations += self.size
        self.best = min(self.best, took)

    @property
    def done(self) -> bool:
        return self.seconds >= self.budget

    def result(self) -> Result:
        return Result(self.name, self.iterations, self.seconds, self.best / self.size * 1e6)


def time_boxed(rows: list[tuple[Row, Batch]]) -> dict[str, Result]:
    """Run the rows' batches in turn, round after round, until each has used its time box.

    Interleaving spreads any change in the machine's load over every row alike, so rows that
    are compared with each other are measured under the same conditions.
    """
    for row, batch in rows:
        batch(max(1, row.size // 10))  # warm-up: caches, specialisation, lazy imports
    while not all(row.done for row, _ in rows):
        for row, batch in rows:
            if not row.done:
                row.add(batch(row.size))
    return {row.key: row.result() for row, _ in rows}


async def time_boxed_async(rows: list[tuple[Row, AsyncBatch]]) -> dict[str, Result]:
    """`time_boxed` for batches that run on the current event loop."""
    for row, batch in rows:
        await batch(max(1, row.size // 10))
    while not all(row.done for row, _ in rows):
        for row, batch in rows:
            if not row.done:
                row.add(await batch(row.size))
    return {row.key: row.result() for row, _ in rows}


def check_admitted(name: str, admitted: int, n: int, tight: bool) -> None:
    """Every row must decide what it is meant to: all admitted, or exactly the first half."""
    expected = min(n, HALF) if tight else n
    assert admitted == expected, f"{name}: {admitted} of {n} admitted, expected {expected}"


# --- memory: keyplane ----------------------------------------------------------------------


def keyplane_memory_hit(tight: bool) -> Callable[[int], float]:
    budgets = [(BUCKET, TIGHT if tight else ROOMY)]

    async def run(n: int) -> float:
        hit = MemoryRateLimiter().hit
        admitted = 0
        start = time.perf_counter()
        for _ in range(n):
            decision, _versions = await hit(ORG_ID, budgets, KEY_ID)
            admitted += decision.allowed
        elapsed = time.perf_counter() - start
        check_admitted("keyplane hit", admitted, n, tight)
        return elapsed

    def batch(n: int) -> float:
        return asyncio.run(run(n))

    return batch


def keyplane_memory_decide() -> Callable[[int], float]:
    budgets = [(BUCKET, ROOMY)]

    def batch(n: int) -> float:
        decide = MemoryRateLimiter().decide
        admitted = 0
        start = time.perf_counter()
        for _ in range(n):
            admitted += decide(budgets).allowed
        elapsed = time.perf_counter() - start
        check_admitted("keyplane decide", admitted, n, tight=False)
        return elapsed

    return batch


# --- memory: limits ------------------------------------------------------------------------

AioStrategy = type[aio_strategies.MovingWindowRateLimiter | aio_strategies.FixedWindowRateLimiter]
SyncStrategy = type[
    sync_strategies.MovingWindowRateLimiter | sync_strategies.FixedWindowRateLimiter
]


def limits_memory_aio(strategy: AioStrategy, tight: bool) -> Callable[[int], float]:
    item = PEER_TIGHT if tight else PEER_ROOMY

    async def run(n: int) -> float:
        hit = strategy(AioMemoryStorage()).hit
        admitted = 0
        start = time.perf_counter()
        for _ in range(n):
            admitted += await hit(item, IDENTIFIER)
        elapsed = time.perf_counter() - start
        check_admitted(strategy.__name__, admitted, n, tight)
        return elapsed

    def batch(n: int) -> float:
        return asyncio.run(run(n))

    return batch


def limits_memory_sync(strategy: SyncStrategy) -> Callable[[int], float]:
    def batch(n: int) -> float:
        hit = strategy(MemoryStorage()).hit
        admitted = 0
        start = time.perf_counter()
        for _ in range(n):
            admitted += hit(PEER_ROOMY, IDENTIFIER)
        elapsed = time.perf_counter() - start
        check_admitted(strategy.__name__, admitted, n, tight=False)
        return elapsed

    return batch


def run_memory(scale: float) -> dict[str, Result]:
    main, other = 2.0 * scale, 1.0 * scale
    rows = [
        ("kp", "keyplane MemoryRateLimiter.hit (async)", keyplane_memory_hit(False), main),
        (
            "aio_mw",
            "limits.aio MemoryStorage moving window",
            limits_memory_aio(aio_strategies.MovingWindowRateLimiter, False),
            main,
        ),
        (
            "aio_fw",
            "limits.aio MemoryStorage fixed window",
            limits_memory_aio(aio_strategies.FixedWindowRateLimiter, False),
            main,
        ),
        ("kp_half", "keyplane hit, half rejected", keyplane_memory_hit(True), other),
        (
            "aio_mw_half",
            "limits.aio moving window, half rejected",
            limits_memory_aio(aio_strategies.MovingWindowRateLimiter, True),
            other,
        ),
        (
            "aio_fw_half",
            "limits.aio fixed window, half rejected",
            limits_memory_aio(aio_strategies.FixedWindowRateLimiter, True),
            other,
        ),
        (
            "kp_sync",
            "keyplane MemoryRateLimiter.decide (sync core)",
            keyplane_memory_decide(),
            other,
        ),
        (
            "sync_mw",
            "limits MemoryStorage moving window (sync)",
            limits_memory_sync(sync_strategies.MovingWindowRateLimiter),
            other,
        ),
        (
            "sync_fw",
            "limits MemoryStorage fixed window (sync)",
            limits_memory_sync(sync_strategies.FixedWindowRateLimiter),
            other,
        ),
    ]
    return time_boxed(
        [(Row(key, name, MEMORY_BATCH, budget), batch) for key, name, batch, budget in rows]
    )


# --- Redis ---------------------------------------------------------------------------------

Hit = Callable[[], Awaitable[bool]]


@dataclass
class RedisSubject:
    key: str
    name: str
    hit: Hit  # one decision; True when admitted


@dataclass(frozen=True)
class Trips:
    writes: float  # client writes (round trips) per decision
    scripts: float  # EVAL/EVALSHA run per decision (server-wide commandstats)
    commands: float  # every command per decision, those run inside Lua included


def sequential(hit: Hit) -> Callable[[int], Awaitable[float]]:
    async def batch(n: int) -> float:
        admitted = 0
        start = time.perf_counter()
        for _ in range(n):
            admitted += await hit()
        elapsed = time.perf_counter() - start
        assert admitted == n, f"{admitted} of {n} admitted"
        return elapsed

    return batch


def concurrent(hit: Hit, width: int) -> Callable[[int], Awaitable[float]]:
    async def batch(n: int) -> float:
        steps = max(1, n // width)
        admitted = 0
        start = time.perf_counter()
        for _ in range(steps):
            admitted += sum(await asyncio.gather(*[hit() for _ in range(width)]))
        elapsed = time.perf_counter() - start
        assert admitted == steps * width, f"{admitted} of {steps * width} admitted"
        return elapsed

    return batch


class WriteCounter:
    """Counts client writes on every redis-py and coredis connection while active."""

    def __init__(self) -> None:
        self.writes = 0

    @contextmanager
    def active(self) -> Iterator[None]:
        redis_cls = redis.asyncio.connection.AbstractConnection
        coredis_cls = coredis.connection.BaseConnection
        redis_send = redis_cls.send_packed_command
        coredis_send = coredis_cls._send_packed_command
        counter = self

        async def counted_redis(self: Any, *args: Any, **kwargs: Any) -> None:
            counter.writes += 1
            await redis_send(self, *args, **kwargs)

        async def counted_coredis(self: Any, *args: Any, **kwargs: Any) -> None:
            counter.writes += 1
            await coredis_send(self, *args, **kwargs)

        redis_cls.send_packed_command = counted_redis  # type: ignore[method-assign]
        coredis_cls._send_packed_command = counted_coredis  # type: ignore[method-assign]
        try:
            yield
        finally:
            redis_cls.send_packed_command = redis_send  # type: ignore[method-assign]
            coredis_cls._send_packed_command = coredis_send  # type: ignore[method-assign]


async def command_stats(admin: Redis) -> tuple[int, int]:
    """(scripts run, all commands) so far, server-wide; INFO itself is left out."""
    stats = await admin.info("commandstats")
    scripts = commands = 0
    for name, entry in stats.items():
        if name in ("cmdstat_info",):
            continue
        commands += int(entry["calls"])
        if name in ("cmdstat_eval", "cmdstat_evalsha"):
            scripts += int(entry["calls"])
    return scripts, commands


async def count_trips(admin: Redis, hit: Hit, width: int) -> Trips:
    """Round trips and server commands per decision over COUNT_DECISIONS warm decisions."""
    # Warm-up at the same width: connections (a pool grows to the concurrency), handshakes,
    # script loads happen once per process, not per decision.
    await asyncio.gather(*[hit() for _ in range(width)])
    counter = WriteCounter()
    scripts0, commands0 = await command_stats(admin)
    with counter.active():
        for _ in range(COUNT_DECISIONS // width):
            if width == 1:
                assert await hit()
            else:
                assert all(await asyncio.gather(*[hit() for _ in range(width)]))
    scripts1, commands1 = await command_stats(admin)
    n = COUNT_DECISIONS // width * width
    return Trips(counter.writes / n, (scripts1 - scripts0) / n, (commands1 - commands0) / n)


@asynccontextmanager
async def redis_subjects(url: str) -> AsyncIterator[list[RedisSubject]]:
    keyplane = RedisRateLimiter.from_url(url, fail_open=False)  # an outage must not pass
    budgets = [(BUCKET, ROOMY)]

    async def keyplane_hit() -> bool:
        result = await keyplane.hit(ORG_ID, budgets, KEY_ID)
        assert result is not None
        return result[0].allowed

    peer_url = "async+" + url
    coredis_storage = RedisStorage(peer_url)  # the default implementation: coredis
    redispy_storage = RedisStorage(peer_url, implementation="redispy")
    subjects = [RedisSubject("kp", "keyplane RedisRateLimiter.hit", keyplane_hit)]
    for impl, storage in (("coredis", coredis_storage), ("redispy", redispy_storage)):
        for short, label, strategy in (
            ("mw", "moving window", aio_strategies.MovingWindowRateLimiter),
            ("fw", "fixed window", aio_strategies.FixedWindowRateLimiter),
        ):
            hit = strategy(storage).hit

            def peer_hit(hit: Any = hit, name: str = f"{IDENTIFIER}-{impl}-{short}") -> Any:
                return hit(PEER_ROOMY, name)  # one key per row: rows run interleaved

            subjects.append(RedisSubject(f"{impl}_{short}", f"limits.aio {impl} {label}", peer_hit))
    try:
        yield subjects
    finally:
        await keyplane.close()
        await redispy_storage.bridge.storage.aclose()  # type: ignore[attr-defined]


async def run_redis(
    url: str, scale: float, width: int
) -> tuple[dict[str, Result], dict[str, Trips]]:
    results: dict[str, Result] = {}
    trips: dict[str, Trips] = {}
    admin = Redis.from_url(url)
    await admin.flushdb()
    try:
        async with redis_subjects(url) as subjects:
            for mode, mode_width in (("seq", 1), ("conc", width)):
                rows: list[tuple[Row, AsyncBatch]] = []
                for subject in subjects:
                    key = f"{subject.key}_{mode}"
                    trips[key] = await count_trips(admin, subject.hit, mode_width)
                    if mode == "seq":
                        row = Row(key, f"{subject.name}, sequential", 100, 2.0 * scale)
                        rows.append((row, sequential(subject.hit)))
                    else:
                        row = Row(
                            key, f"{subject.name}, {width} concurrent", width * 10, 2.0 * scale
                        )
                        rows.append((row, concurrent(subject.hit, width)))
                results.update(await time_boxed_async(rows))
    finally:
        await admin.flushdb()
        await admin.aclose()
    return results, trips


# --- report --------------------------------------------------------------------------------

WIDTH = 56


def print_table(results: list[Result]) -> None:
    header = (
        f"{'operation':<{WIDTH}} {'iterations':>10} {'total s':>7} {'µs/op':>8} {'ops/s':>9} "
        f"{'best µs/op':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.name:<{WIDTH}} {r.iterations:>10,} {r.seconds:>7.3f} {r.per_op_us:>8.2f} "
            f"{r.ops_per_second:>9,.0f} {r.best_batch_us:>10.2f}"
        )


def print_trips(results: dict[str, Result], trips: dict[str, Trips]) -> None:
    header = (
        f"{'implementation, mode':<{WIDTH}} {'round trips/decision':>20} {'scripts/dec':>11} "
        f"{'commands/dec':>12}"
    )
    print(header)
    print("-" * len(header))
    for key, t in trips.items():
        print(
            f"{results[key].name:<{WIDTH}} {t.writes:>20.3f} {t.scripts:>11.3f} {t.commands:>12.3f}"
        )


def ratio_line(label: str, ours: Result, theirs: Result) -> float:
    ratio = ours.ops_per_second / theirs.ops_per_second
    best = theirs.best_batch_us / ours.best_batch_us
    print(f"  {label:<58} {ratio:>6.2f}x   (best batches {best:.2f}x)")
    return ratio


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=1.0, help="scale every time box")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="this DB is flushed")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    args = parser.parse_args()
    width = args.concurrency

    pinned, before = pin_to_one_core()
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}) on "
        f"{platform.machine()}, {os.cpu_count()} CPUs, {pinned} for the memory part; gc "
        f"{'enabled' if gc.isenabled() else 'disabled'}"
    )
    print(
        f"limits {version('limits')}, coredis {version('coredis')}, redis-py "
        f"{version('redis')} (hiredis {'yes' if _has_hiredis() else 'no'}), Redis at "
        f"{args.redis_url}"
    )
    load = load_average()
    if load > 0.5:
        print(
            f"warning: load average {load:.2f} -- other processes compete for the CPU, so "
            "figures are low and noisy; the best-batch column is the least disturbed one"
        )

    memory = run_memory(args.seconds)
    unpin(before)  # the client and redis-server may use every CPU
    redis_results, trips = asyncio.run(run_redis(args.redis_url, args.seconds, width))

    print()
    print(f"memory (each batch: {MEMORY_BATCH:,} decisions on one key, fresh limiter)")
    print_table(list(memory.values()))
    print()
    print("Redis")
    print_table(list(redis_results.values()))
    print()
    print(
        f"round trips (client writes, each awaited) per decision over {COUNT_DECISIONS} warm "
        "decisions; scripts and commands from INFO commandstats (server-wide; commands "
        "include those run inside Lua)"
    )
    print_trips(redis_results, trips)

    m, r = memory, redis_results
    print()
    print("ratios keyplane/limits (ops/s, whole-run means):")
    ratio_line("memory, async, all admitted, vs moving window", m["kp"], m["aio_mw"])
    ratio_line("memory, async, all admitted, vs fixed window", m["kp"], m["aio_fw"])
    ratio_line("memory, async, half rejected, vs moving window", m["kp_half"], m["aio_mw_half"])
    ratio_line("memory, async, half rejected, vs fixed window", m["kp_half"], m["aio_fw_half"])
    ratio_line("memory, sync core (decide) vs sync moving window", m["kp_sync"], m["sync_mw"])
    ratio_line("memory, sync core (decide) vs sync fixed window", m["kp_sync"], m["sync_fw"])
    redis_ratios: dict[str, tuple[float, str]] = {}
    for mode, label in (("seq", "sequential"), ("conc", f"{width} concurrent")):
        worst = (float("inf"), "")
        for peer in ("coredis_mw", "coredis_fw", "redispy_mw", "redispy_fw"):
            peer_result = r[f"{peer}_{mode}"]
            name = peer_result.name.removeprefix("limits.aio ").split(",")[0]
            ratio = ratio_line(f"Redis, {label}, vs {name}", r[f"kp_{mode}"], peer_result)
            worst = min(worst, (ratio, name))
        redis_ratios[mode] = worst

    print()
    memory_peer = max(m["aio_mw"], m["aio_fw"], key=lambda x: x.ops_per_second)
    memory_ratio = m["kp"].ops_per_second / memory_peer.ops_per_second
    print(
        f"target memory >= {TARGET_MEMORY_RATIO:.0f}x limits (async hit, all admitted, vs the "
        f"faster limits.aio strategy): {verdict(memory_ratio >= TARGET_MEMORY_RATIO)} "
        f"({memory_ratio:.2f}x vs {memory_peer.name})"
    )
    seq_trips, conc_trips = trips["kp_seq"].writes, trips["kp_conc"].writes
    print(
        f"target Redis <= {TARGET_ROUND_TRIPS:.0f} round trip per decision: "
        f"{verdict(max(seq_trips, conc_trips) <= TARGET_ROUND_TRIPS)} "
        f"(sequential {seq_trips:.3f}, {width} concurrent {conc_trips:.3f})"
    )
    for mode, label in (("seq", "sequential"), ("conc", f"{width} concurrent")):
        ratio, name = redis_ratios[mode]
        print(
            f"target Redis throughput >= limits, {label} (vs the fastest limits.aio row): "
            f"{verdict(ratio >= TARGET_REDIS_RATIO)} ({ratio:.2f}x vs {name})"
        )
    return 0


def _has_hiredis() -> bool:
    from redis.utils import HIREDIS_AVAILABLE

    return bool(HIREDIS_AVAILABLE)


if __name__ == "__main__":
    sys.exit(main())
