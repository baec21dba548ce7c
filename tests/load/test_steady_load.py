"""A bounded load test (issue 8): several `keyplane serve` processes on PostgreSQL + Redis
behind one client that holds a steady request rate for a while (KEYPLANE_LOAD_SECONDS,
default 20; `make loadtest` runs it for three minutes), then stops by itself.

It asserts what an operator relies on under sustained load: no 5xx, the rate was held (the
servers kept up), every created conversation is stored, every request is in the keys' usage
counts once the processes have shut down (nothing buffered is lost), and a rate-limited key
shared by all processes got no more than its allowance."""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from keyplane.domain.ratelimit import burst_capacity
from tests.cli.conftest import Cli

pytestmark = [pytest.mark.load, pytest.mark.serial]

SECONDS = float(os.environ.get("KEYPLANE_LOAD_SECONDS", "20"))
RATE = float(os.environ.get("KEYPLANE_LOAD_RATE", "60"))  # requests per second, all servers
SERVERS = 2
WORKERS_PER_SERVER = 2
LIMITED_PER_MINUTE = 60  # the one key that is meant to meet its limit (a quarter of the load)
IN_FLIGHT = 64


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    per_key: Counter[str] = field(default_factory=Counter)
    limited_ok: int = 0
    created: int = 0
    latencies: list[float] = field(default_factory=list)
    sent_per_second: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)


async def _run_load(
    urls: list[str], project: int, keys: dict[str, str], limited: str, tally: Tally
) -> float:
    """Open loop: request i is sent at start + i / RATE whatever the answers, so a slow
    server shows as falling behind instead of being politely waited for."""
    plain = [k for k in keys if k != limited]
    gate = asyncio.Semaphore(IN_FLIGHT)
    # Idle connections are dropped by the client well before the server's keep-alive timeout,
    # so that no request is sent on a connection the server is closing.
    limits = httpx.Limits(
        max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT, keepalive_expiry=5.0
    )

    async def one(client: httpx.AsyncClient, i: int) -> None:
        async with gate:
            key_id = limited if i % 4 == 0 else plain[i % len(plain)]
            base = f"{urls[i % len(urls)]}/v1/projects/{project}"
            headers = {"Authorization": f"Bearer {keys[key_id]}"}
            began = time.perf_counter()
            if i % 7 == 0:
                response = await client.post(
                    f"{base}/conversations",
                    headers=headers,
                    json={"user_id": f"user-{i % 50}", "message": f"load message {i}"},
                )
            elif i % 3 == 0:
                response = await client.get(f"{base}/conversations?limit=5", headers=headers)
            else:
                response = await client.get(base, headers=headers)
            tally.latencies.append(time.perf_counter() - began)
            tally.statuses[response.status_code] += 1
            tally.per_key[key_id] += 1
            if response.status_code >= 500:
                tally.server_errors.append(response.text[:300])
            if key_id == limited and response.status_code < 400:
                tally.limited_ok += 1
            if response.status_code == 201:
                tally.created += 1

    total = int(SECONDS * RATE)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        start = time.monotonic()
        tasks = []
        for i in range(total):
            delay = start + i / RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tally.sent_per_second[int(time.monotonic() - start)] += 1
            tasks.append(asyncio.create_task(one(client, i)))
        await asyncio.gather(*tasks)
        return time.monotonic() - start


async def _stored(dsn: str, key_ids: list[str]) -> tuple[dict[str, int], int]:
    connection = await asyncpg.connect(dsn.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await connection.fetch(
            "SELECT key_id, sum(count) AS n FROM key_usage_hourly "
            "WHERE key_id = any($1::text[]) GROUP BY key_id",
            key_ids,
        )
        conversations = await connection.fetchval("SELECT count(*) FROM conversations")
    finally:
        await connection.close()
    return {row["key_id"]: int(row["n"]) for row in rows}, int(conversations)


def test_steady_load_on_several_processes(
    cli: Cli,
    cli_env: dict[str, str],
    serve: Any,
    redis_url: str,
    postgres_database: str,
    tmp_path: Path,
) -> None:
    made = cli.bootstrap()
    project = made["project_id"]
    cli.run(
        f"orgs set-plan {made['org_id']} --plan enterprise --per-minute 100000 --per-day 10000000"
    )
    keys: dict[str, str] = {}
    for n in range(4):
        created = cli.create_key(
            project, "project:read", "conversation:read", "conversation:generate", name=f"load {n}"
        )
        keys[created["id"]] = created["secret"]
    limited_key = cli.json(
        f"keys create --project {project} --name limited -p project:read "
        f"-p conversation:read -p conversation:generate --rate-limit {LIMITED_PER_MINUTE}/min"
    )
    keys[limited_key["id"]] = limited_key["secret"]

    env = cli_env | {"KEYPLANE_REDIS_URL": redis_url, "KEYPLANE_LOG_FORMAT": "json"}
    servers = [serve(env, tmp_path, "--workers", str(WORKERS_PER_SERVER)) for _ in range(SERVERS)]
    for server in servers:
        server.wait_healthy(timeout=60)

    tally = Tally()
    elapsed = asyncio.run(
        _run_load([s.url for s in servers], project, keys, limited_key["id"], tally)
    )
    for server in servers:
        assert server.stop(timeout=30) == 0, server.output()  # graceful: buffers flushed

    sent = tally.statuses.total()
    assert not tally.server_errors, tally.server_errors[:5]
    assert set(tally.statuses) <= {200, 201, 429}, tally.statuses

    counted, conversations = asyncio.run(_stored(postgres_database, list(keys)))
    assert conversations == tally.created
    assert counted == dict(tally.per_key), "usage counts lost or doubled"

    # Only the limited key meets its limit, and all processes together respect it.
    allowance = burst_capacity(LIMITED_PER_MINUTE) + math.ceil(LIMITED_PER_MINUTE * elapsed / 60)
    assert 0 < tally.limited_ok <= allowance, (tally.limited_ok, allowance)
    assert tally.statuses[429] == tally.per_key[limited_key["id"]] - tally.limited_ok

    # The rate was held: the run took about its planned time and every 5-second window got
    # its share (an open-loop client falls behind when the servers don't keep up).
    assert elapsed < SECONDS * 1.15 + 2, f"{sent} requests took {elapsed:.1f} s"
    windows = [
        sum(tally.sent_per_second[s] for s in range(w, w + 5))
        for w in range(0, int(SECONDS) - 5, 5)
    ]
    assert min(windows) >= RATE * 5 * 0.85, windows
    latencies = sorted(tally.latencies)
    p99 = latencies[int(len(latencies) * 0.99)]
    assert p99 < 2.0, f"p99 {p99 * 1000:.0f} ms: the servers did not keep up"
