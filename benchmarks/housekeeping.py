"""Housekeeping at scale: what deleting a backlog costs, and what it spares everyone else.

On each backend (SQLite, and PostgreSQL with ``--postgres-url``), a scratch database gets
``--rows`` hourly usage rows (``--keys`` keys, one row per key and hour, the oldest half past
retention). Then, from the same starting data:

* the baseline: one ``DELETE … WHERE hour < cutoff`` in one transaction, the obvious way;
* keyplane: ``housekeeping.sweep``, batches of ``BATCH`` rows, each its own transaction.

Meanwhile a writer stands in for the API processes' usage flush (an upsert of this hour's
row every 10 ms) and records how long each write waited. Printed per backend: total time of
the delete (keyplane / baseline: what batching costs) and the writer's longest wait
(baseline / keyplane: what batching spares; on SQLite, one writer at a time, the baseline's
writer waits for the whole delete).

Also, on PostgreSQL: anomaly detection's "keys used this hour" query (``keys_used_in``) with
the hour index of migration 0015 and without it (dropped for the comparison).

Run:  .venv/bin/python benchmarks/housekeeping.py [--postgres-url postgresql://…/postgres]
      (about a minute with the default 1,000,000 rows)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from keyplane.adapters.sql.database import create_engine, session_factory
from keyplane.adapters.sql.migrate import upgrade
from keyplane.observability import configure_logging
from keyplane.services import housekeeping
from keyplane.services.anomalies import keys_used_in
from keyplane.services.housekeeping import Retention, sweep

BENCH_DATABASE = "keyplane_bench_housekeeping"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
RETENTION = Retention(usage=timedelta(days=400))

POSTGRES_FILL = """
INSERT INTO key_usage_hourly (key_id, hour, status_class, permission, count)
SELECT 'key_' || k, CAST(:start AS timestamptz) + make_interval(hours => h), 'success',
       'project:read', 1
FROM generate_series(0, :keys - 1) AS k, generate_series(0, :hours - 1) AS h
"""
SQLITE_FILL = """
INSERT INTO key_usage_hourly (key_id, hour, status_class, permission, count)
WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n + 1 < :keys),
     h(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM h WHERE n + 1 < :hours)
SELECT 'key_' || k.n, strftime('%Y-%m-%d %H:%M:%S.000000', :start, '+' || h.n || ' hours'),
       'success', 'project:read', 1
FROM k, h
"""
FLUSH = """
INSERT INTO key_usage_hourly (key_id, hour, status_class, permission, count)
VALUES ('key_live', :hour, 'success', 'project:read', 1)
ON CONFLICT (key_id, hour, status_class, permission)
DO UPDATE SET count = key_usage_hourly.count + 1
"""


async def fill(engine: AsyncEngine, keys: int, hours: int) -> datetime:
    """`keys` x `hours` rows ending now; returns the retention cutoff (half of them older)."""
    start = NOW - RETENTION.usage - timedelta(hours=hours // 2)  # type: ignore[operator]
    postgres = engine.dialect.name == "postgresql"
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM key_usage_hourly"))
        await connection.execute(
            text(POSTGRES_FILL if postgres else SQLITE_FILL),
            {"keys": keys, "hours": hours, "start": start if postgres else start.isoformat()},
        )
    if postgres:
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM ANALYZE key_usage_hourly"))
    return NOW - RETENTION.usage  # type: ignore[operator]


async def with_writer(engine: AsyncEngine, work: Callable[[], Awaitable[None]]) -> list[float]:
    """Run `work` while a usage flush writes every 10 ms; returns each write's seconds."""
    waits: list[float] = []
    done = asyncio.Event()

    async def writer() -> None:
        while not done.is_set():
            began = time.perf_counter()
            async with engine.begin() as connection:
                await connection.execute(text(FLUSH), {"hour": NOW})
            waits.append(time.perf_counter() - began)
            await asyncio.sleep(0.01)

    task = asyncio.create_task(writer())
    await asyncio.sleep(0.05)
    try:
        await work()
    finally:
        done.set()
        await task
    return waits


async def compare_deletes(engine: AsyncEngine, keys: int, hours: int) -> dict[str, float]:
    sessions = session_factory(engine)
    figures: dict[str, float] = {}

    cutoff = await fill(engine, keys, hours)

    async def one_statement() -> None:
        async with engine.begin() as connection:
            await connection.execute(
                text("DELETE FROM key_usage_hourly WHERE hour < :cutoff"), {"cutoff": cutoff}
            )

    began = time.perf_counter()
    waits = await with_writer(engine, one_statement)
    figures["baseline_seconds"] = time.perf_counter() - began
    figures["baseline_longest_wait"] = max(waits)

    await fill(engine, keys, hours)
    deleted: dict[str, int] = {}

    async def batches() -> None:
        deleted.update(await sweep(sessions, RETENTION, NOW))

    began = time.perf_counter()
    waits = await with_writer(engine, batches)
    figures["keyplane_seconds"] = time.perf_counter() - began
    figures["keyplane_longest_wait"] = max(waits)
    figures["keyplane_median_wait"] = statistics.median(waits)
    expected = keys * (hours // 2)
    if deleted["usage_rows"] != expected:
        raise RuntimeError(f"swept {deleted['usage_rows']} rows, expected {expected}")
    return figures


async def compare_hour_query(engine: AsyncEngine, repeats: int = 20) -> tuple[float, float]:
    """Median seconds of anomaly detection's first batch query, with and without the index."""
    query = keys_used_in(NOW - timedelta(hours=1), "")

    async def median() -> float:
        times = []
        async with session_factory(engine)() as db:
            for _ in range(repeats):
                began = time.perf_counter()
                (await db.scalars(query)).all()
                times.append(time.perf_counter() - began)
        return statistics.median(times)

    with_index = await median()
    async with engine.begin() as connection:
        await connection.execute(text("DROP INDEX ix_key_usage_hourly_hour"))
    without = await median()
    async with engine.begin() as connection:
        await connection.execute(
            text("CREATE INDEX ix_key_usage_hourly_hour ON key_usage_hourly (hour)")
        )
    return with_index, without


@asynccontextmanager
async def postgres_database(admin_url: str) -> AsyncIterator[AsyncEngine]:
    admin_dsn = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{BENCH_DATABASE}"')
    engine = create_engine(admin_dsn.rsplit("/", 1)[0] + f"/{BENCH_DATABASE}")
    try:
        await upgrade(engine)
        yield engine
    finally:
        await engine.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')
        await admin.close()


def report(backend: str, rows: int, figures: dict[str, float]) -> None:
    cost = figures["keyplane_seconds"] / figures["baseline_seconds"]
    spared = figures["baseline_longest_wait"] / figures["keyplane_longest_wait"]
    print(f"\n{backend}: deleting {rows // 2:,} of {rows:,} usage rows")
    print(f"  {'':34} {'total s':>9} {'longest write wait':>19}")
    print(
        f"  {'baseline: one DELETE':34} {figures['baseline_seconds']:9.2f} "
        f"{figures['baseline_longest_wait'] * 1000:16.1f} ms"
    )
    print(
        f"  {f'keyplane: batches of {housekeeping.BATCH:,}':34} "
        f"{figures['keyplane_seconds']:9.2f} {figures['keyplane_longest_wait'] * 1000:16.1f} ms"
        f"   (median wait {figures['keyplane_median_wait'] * 1000:.1f} ms)"
    )
    print(f"  total time keyplane / baseline: {cost:.2f}x (what batching costs)")
    print(f"  longest write wait baseline / keyplane: {spared:.1f}x (what it spares writers)")


async def main() -> None:
    configure_logging(json_format=False, level=logging.WARNING)  # not the sweep's own summary
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--skip-postgres", action="store_true")
    options = parser.parse_args()
    hours = max(2, options.rows // options.keys)
    rows = options.keys * hours

    with tempfile.TemporaryDirectory() as directory:
        engine = create_engine(f"sqlite:///{Path(directory) / 'bench.db'}")
        try:
            await upgrade(engine)
            report("SQLite", rows, await compare_deletes(engine, options.keys, hours))
        finally:
            await engine.dispose()
    if options.skip_postgres:
        return
    async with postgres_database(options.postgres_url) as engine:
        report("PostgreSQL", rows, await compare_deletes(engine, options.keys, hours))
        await fill(engine, options.keys, hours)
        with_index, without = await compare_hour_query(engine)
        print(f"\nPostgreSQL: anomaly detection's keys-used-this-hour query over {rows:,} rows")
        print(f"  with ix_key_usage_hourly_hour {with_index * 1000:8.2f} ms (median)")
        print(f"  without (primary key only)    {without * 1000:8.2f} ms")
        print(f"  without / with: {without / with_index:.0f}x")


if __name__ == "__main__":
    asyncio.run(main())
