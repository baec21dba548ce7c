"""Bursts of failed authentication: counted in memory on the request path, written as ONE
alert and audit event per address and window by the background loop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from keyplane.adapters.sql.models import AuditEvent
from keyplane.api.app import create_app
from keyplane.domain import keyformat
from keyplane.runtime import Runtime
from keyplane.services.auth_failures import AuthFailureMonitor
from keyplane.settings import Settings
from tests.conftest import TEST_SECRET, World, bearer

THRESHOLD = 5


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
        data_dir=tmp_path,
        change_poll_seconds=0.05,
        auth_failure_burst_threshold=THRESHOLD,
        auth_failure_burst_window_seconds=60,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
async def remote(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """A client calling from another address than the conftest client."""
    transport = httpx.ASGITransport(app=create_app(runtime), client=("203.0.113.9", 41000))
    async with httpx.AsyncClient(transport=transport, base_url="http://keyplane.test") as c:
        yield c


async def _burst_events(runtime: Runtime, expected: int = 1) -> list[AuditEvent]:
    for _ in range(200):
        async with runtime.sessions() as db:
            rows = list(
                await db.scalars(
                    select(AuditEvent).where(AuditEvent.action == "alert.auth_failure_burst")
                )
            )
        if len(rows) >= expected:
            await asyncio.sleep(0.3)  # and no more arrive
            async with runtime.sessions() as db:
                query = select(AuditEvent).where(AuditEvent.action == "alert.auth_failure_burst")
                return list(await db.scalars(query))
        await asyncio.sleep(0.05)
    raise AssertionError("no burst event written")


async def test_guessing_keys_writes_one_event_per_address(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    guesses = [keyformat.generate(keyformat.Mode.LIVE) for _ in range(THRESHOLD * 3)]
    for guess in guesses:
        response = await client.get(
            f"/v1/projects/{world.project_id}",
            headers=bearer(guess) | {"User-Agent": "key-guesser/1.0"},
        )
        assert response.status_code == 401
    [event] = await _burst_events(runtime)
    assert event.ip == "127.0.0.1"
    assert event.user_agent == "key-guesser/1.0"
    assert event.data["count"] >= THRESHOLD
    assert event.data["errors"] == {"invalid_api_key": event.data["count"]}
    assert event.key_id is None
    stored = json.dumps(event.data)
    assert not any(guess in stored or guess[8:-6] in stored for guess in guesses)


async def test_a_revoked_key_in_use_names_the_key_and_its_project(
    client: httpx.AsyncClient, remote: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    secret = await world.project_key("project:read", name="Old CRM key")
    key = await runtime.verifier.verify(f"Bearer {secret}")
    admin = await world.user_key("api_key:write")
    gone = await client.delete(
        f"/v1/projects/{world.project_id}/api-keys/{key.id}", headers=bearer(admin)
    )
    assert gone.status_code == 204
    for _ in range(THRESHOLD):
        response = await remote.get(f"/v1/projects/{world.project_id}", headers=bearer(secret))
        assert response.json()["error"] == "api_key_revoked"
    [event] = await _burst_events(runtime)
    assert event.ip == "203.0.113.9"
    assert event.key_id == key.id
    assert event.project_id == world.project_id
    assert event.data["key_ids"] == [key.id]

    listed = await client.get(f"/v1/projects/{world.project_id}/alerts", headers=bearer(admin))
    [alert] = listed.json()["data"]
    assert alert["kind"] == "auth_failure_burst"
    assert "203.0.113.9" in alert["message"]
    audit = await client.get(
        f"/v1/projects/{world.project_id}/audit-events?action=alert.auth_failure_burst",
        headers=bearer(admin),
    )
    assert len(audit.json()["data"]) == 1


async def test_below_the_threshold_nothing_is_written(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    for _ in range(THRESHOLD - 1):
        await client.get(f"/v1/projects/{world.project_id}", headers=bearer("sk_live_short"))
    assert await runtime.changes.report_failures() == 0
    await asyncio.sleep(0.2)
    async with runtime.sessions() as db:
        assert await db.scalar(select(AuditEvent).where(AuditEvent.action.like("alert.%"))) is None


def test_the_monitor_queues_each_window_once_and_stays_bounded() -> None:
    monitor = AuthFailureMonitor(threshold=3, window_seconds=60, max_entries=100)
    for second in range(10):
        monitor.record("10.0.0.1", "ua", "invalid_api_key", None, 1_000_020 + second)
    [(slot, burst)] = monitor.drain(1_000_030)
    assert slot == ("10.0.0.1", 1_000_020)
    assert burst.count == 10
    assert monitor.drain(1_000_031) == []  # reported once per window
    monitor.record("10.0.0.1", None, "invalid_api_key", "key_a", 1_000_080)
    monitor.record("10.0.0.1", None, "api_key_revoked", "key_a", 1_000_081)
    monitor.record("10.0.0.1", None, "api_key_revoked", "key_b", 1_000_082)
    [(slot, burst)] = monitor.drain(1_000_083)  # the next window is a new burst
    assert slot == ("10.0.0.1", 1_000_080)
    assert burst.key_ids == ["key_a", "key_b"]
    for n in range(1000):
        monitor.record(f"10.1.{n // 256}.{n % 256}", None, "invalid_api_key", None, 1_000_090)
    assert len(monitor.bursts) <= 100
