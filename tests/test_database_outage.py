"""A PostgreSQL restart during load (issue 8): requests that need the database get a clear 503
while it is gone, every write that was answered 201 is stored, usage counted during the outage
reaches the database, and the process recovers by itself, without a restart."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from keyplane.adapters.sql.database import create_engine
from keyplane.adapters.sql.models import Conversation, KeyUsageHourly, Message
from keyplane.api.app import create_app
from keyplane.runtime import Runtime
from keyplane.services import accounts
from keyplane.settings import Settings
from tests.conftest import BACKENDS, PASSWORD, TEST_SECRET, World, _truncate, bearer
from tests.faults import TcpProxy, port_of

pytestmark = [
    pytest.mark.skipif("postgres" not in BACKENDS, reason="PostgreSQL not selected"),
    pytest.mark.serial,
]

WORKERS = 8


async def _until(condition: Callable[[], bool], failure: str) -> None:
    """Wait for `condition`, at most 20 s (the machine may be slow: no fixed sleep decides
    the outcome)."""
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, failure
        await asyncio.sleep(0.05)


@pytest.fixture
async def proxy(postgres_database: str) -> AsyncIterator[TcpProxy]:
    await _truncate(postgres_database)
    proxy = TcpProxy(port_of(postgres_database))
    await proxy.start()
    yield proxy
    if proxy.serving:
        await proxy.stop()


async def test_a_postgresql_restart_under_load_loses_no_accepted_write(
    postgres_database: str, proxy: TcpProxy, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=proxy.url_for(postgres_database),
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
        data_dir=tmp_path,
        change_poll_seconds=0.05,
        last_used_flush_seconds=0.2,
        _env_file=None,  # type: ignore[call-arg]
    )
    runtime = await Runtime.start(settings, migrate=False)
    async with runtime.transaction() as db:
        made = await accounts.bootstrap(db, email="owner@example.com", password=PASSWORD)
        # Room for the load: what is measured here is the database, not the rate limit.
        await accounts.set_plan(db, made.org_id, "enterprise", 1_000_000, 10_000_000)
    world = World(runtime, made.org_id, made.user_id, made.project_id, "owner@example.com")
    key = await world.project_key("conversation:generate")
    # Let the change feed apply the key's creation now: applied later, it would drop the
    # cached key in the middle of the outage, and those requests could not be authenticated
    # (nor counted) at all.
    await runtime.changes.poll()
    path = f"/v1/projects/{world.project_id}/conversations"
    accepted: dict[int, str] = {}
    statuses: Counter[int] = Counter()
    stop_at = time.monotonic() + 1e9

    async def worker(client: httpx.AsyncClient, number: int) -> None:
        sent = 0
        while time.monotonic() < stop_at:
            message = f"worker {number} message {sent}"
            sent += 1
            response = await client.post(
                path, headers=bearer(key), json={"user_id": f"u{number}", "message": message}
            )
            statuses[response.status_code] += 1
            if response.status_code == 201:
                accepted[response.json()["id"]] = message
            else:
                assert response.status_code == 503, response.text
                body = response.json()
                assert body["error"] == "database_unavailable"
                assert response.headers["Retry-After"].isdigit()
                await asyncio.sleep(0.05)

    try:
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            workers = [asyncio.create_task(worker(client, n)) for n in range(WORKERS)]
            await _until(lambda: statuses[201] >= WORKERS, "no request served before the outage")
            served_before = statuses[201]
            await proxy.stop()  # the restart: every connection dropped, new ones refused
            await _until(lambda: statuses[503] >= WORKERS, "the outage was not felt")
            await asyncio.sleep(0.5)
            failed_during = statuses[503]
            await proxy.start()
            # Recovery without a restart: requests are served again, for a while.
            await _until(lambda: statuses[201] > served_before, "no recovery without a restart")
            await asyncio.sleep(1.0)
            stop_at = time.monotonic()
            await asyncio.gather(*workers)
    finally:
        await runtime.close()  # flushes the usage buffer

    assert served_before > 0, statuses
    assert failed_during > 0, statuses  # the outage was felt
    assert set(statuses) <= {201, 503}, statuses
    assert statuses[201] > served_before, "nothing was accepted after the database came back"

    engine = create_engine(postgres_database)  # straight to the server, not through the proxy
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(Conversation.id, Message.content)
                .join(Message, Message.conversation_id == Conversation.id)
                .where(Conversation.id.in_(list(accepted)))
            )
            stored = {conversation: content for conversation, content in rows.all()}
            counted = await connection.scalar(select(func.sum(KeyUsageHourly.count)))
    finally:
        await engine.dispose()
    assert stored == accepted  # every 201 is there, with its message
    assert counted == statuses.total()  # every authenticated request counted, outage included
