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
    for number in ("1700000000", "8.5e-19"):  # not ISO 8601, however pydantic reads it
        numeric = await client.get(url, headers=bearer(admin), params={"to": number})
        assert numeric.status_code == 422, number


async def test_rotation_shows_how_many_systems_still_use_the_old_secret(
    client: httpx.AsyncClient, world: World
) -> None:
    from keyplane.api.app import create_app

    admin = await world.user_key(*sorted(PROJECT_PERMISSIONS))
    old = await world.project_key("project:read")
    old_id = (await world.runtime.verifier.verify(f"Bearer {old}")).id
    keys = f"/v1/projects/{world.project_id}/api-keys"
    project = f"/v1/projects/{world.project_id}"

    def system(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=create_app(world.runtime), client=(address, 4000))
        return httpx.AsyncClient(transport=transport, base_url="http://keyplane.test")

    async with system("10.0.0.1") as crm, system("10.0.0.2") as ci:
        await crm.get(project, headers={**bearer(old), "User-Agent": "crm"})
        rotated = (await client.post(f"{keys}/{old_id}/rotate", headers=bearer(admin))).json()
        detail = (await client.get(f"{keys}/{old_id}", headers=bearer(admin))).json()
        assert detail["rotation"]["replaced_by"] == rotated["id"]
        assert detail["rotation"]["still_used_by"] == 0  # the CRM call was before the rotation
        await crm.get(project, headers=bearer(old))
        await world.runtime.changes.flush()  # counted whether flushed or not
        await ci.get(project, headers=bearer(old))
        detail = (await client.get(f"{keys}/{old_id}", headers=bearer(admin))).json()
        assert detail["rotation"]["still_used_by"] == 2
        assert {c["ip"] for c in detail["clients"]} == {"10.0.0.1", "10.0.0.2"}
        crm_seen = next(c for c in detail["clients"] if c["ip"] == "10.0.0.1")
        assert crm_seen["requests"] == 2
        assert crm_seen["user_agent"] == "crm"
        # Both systems move to the new key; the new key shows them, the old one stays at 2
        # for what it saw, and a key not in grace has no rotation block.
        await crm.get(project, headers=bearer(rotated["secret"]))
        fresh = (await client.get(f"{keys}/{rotated['id']}", headers=bearer(admin))).json()
        assert fresh["rotation"] is None
        assert [c["ip"] for c in fresh["clients"]] == ["10.0.0.1"]


async def test_a_large_flush_is_written_whole(world: World) -> None:
    # A busy process can see tens of thousands of (key, address) pairs between flushes: more
    # rows than one statement may carry bind parameters for (32,767 on both databases). The
    # flush must write them all, not fail and keep them forever.
    from keyplane.adapters.sql.models import KeyClient

    key = await world.project_key("project:read")
    key_id = (await world.runtime.verifier.verify(f"Bearer {key}")).id
    usage = world.runtime.usage
    pairs = 7_000
    for n in range(pairs):
        address = f"10.{n // 65536}.{n // 256 % 256}.{n % 256}"
        usage.record(key_id, f"invoices:read{n}", 200, 1_800_000_000.0, address, "agent/1.0")
        world.runtime.verifier.used[key_id] = 1_800_000_000.0
    await world.runtime.changes.flush()
    assert not usage.counts
    assert not usage.clients
    async with world.runtime.sessions() as db:
        assert await db.scalar(select(func.count()).select_from(KeyClient)) == pairs
        assert await db.scalar(select(func.sum(KeyUsageHourly.count))) == pairs
