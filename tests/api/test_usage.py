"""Per-key usage: counted in memory, flushed in batches, queryable (issue 7)."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from keyplane.adapters.sql.models import KeyUsageHourly
from keyplane.domain.permissions import PROJECT_PERMISSIONS
from tests.conftest import World, bearer


async def _usage(client: httpx.AsyncClient, world: World, admin: str, key_id: str) -> Any:
    response = await client.get(
        f"/v1/projects/{world.project_id}/api-keys/{key_id}/usage",
        headers=bearer(admin),
        params={"group_by": "day"},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_usage_by_status_and_permission(client: httpx.AsyncClient, world: World) -> None:
    admin = await world.user_key(*sorted(PROJECT_PERMISSIONS))
    key = await world.project_key("project:read", "conversation:read", rate_limit={"per_minute": 3})
    key_id = (await world.runtime.verifier.verify(f"Bearer {key}")).id
    project = f"/v1/projects/{world.project_id}"
    statuses = [
        (await client.get(project, headers=bearer(key))).status_code,
        (await client.get(project + "/conversations", headers=bearer(key))).status_code,
        (await client.get(project + "/conversations/999", headers=bearer(key))).status_code,
        (await client.get(project, headers=bearer(key))).status_code,
        (await client.get(project, headers=bearer(key))).status_code,
    ]
    assert statuses == [200, 200, 404, 200, 429]  # capacity 3 + 1

    # Counted before any flush (this process's buffer is included) ...
    before = await _usage(client, world, admin, key_id)
    async with world.runtime.sessions() as db:
        assert await db.scalar(select(func.count()).select_from(KeyUsageHourly)) == 0
    # ... and identical once flushed in one batch.
    await world.runtime.changes.flush()
    after = await _usage(client, world, admin, key_id)
    assert before["data"] == after["data"]
    [day] = after["data"]
    assert (day["success"], day["client_error"], day["rate_limited"]) == (3, 1, 1)
    assert day["total"] == 5
    assert after["permissions"] == {"conversation:read": 2, "project:read": 3}

    # Later flushes add to the same hourly rows.
    await client.get(project, headers=bearer(key))
    await world.runtime.changes.flush()
    again = await _usage(client, world, admin, key_id)
    assert again["data"][0]["total"] == 6


async def test_usage_range_is_validated(client: httpx.AsyncClient, world: World) -> None:
    admin = await world.user_key(*sorted(PROJECT_PERMISSIONS))
    key = await world.project_key("project:read")
    key_id = (await world.runtime.verifier.verify(f"Bearer {key}")).id
    url = f"/v1/projects/{world.project_id}/api-keys/{key_id}/usage"
    backwards = await client.get(
        url,
        headers=bearer(admin),
        params={"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
    )
    assert backwards.status_code == 422
    assert backwards.json()["error"] == "validation_error"
    bad_group = await client.get(url, headers=bearer(admin), params={"group_by": "year"})
    assert bad_group.status_code == 422
