"""The audit log and the quarterly key audit (issue 7)."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import update

from keyplane.adapters.sql.models import ApiKey
from keyplane.adapters.sql.repositories import utcnow
from keyplane.domain.permissions import PROJECT_PERMISSIONS
from keyplane.services.audit import key_report
from tests.conftest import World, bearer


async def test_key_events_are_recorded_with_actor_and_address(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = await world.user_key(*sorted(PROJECT_PERMISSIONS))
    admin_id = (await world.runtime.verifier.verify(f"Bearer {admin}")).id
    keys = f"/v1/projects/{world.project_id}/api-keys"
    headers = {**bearer(admin), "User-Agent": "crm-sync/1.0"}
    created = (
        await client.post(keys, headers=headers, json={"name": "a", "permissions": []})
    ).json()
    await client.patch(f"{keys}/{created['id']}", headers=headers, json={"name": "b"})
    await client.post(f"{keys}/{created['id']}/rotate", headers=headers)
    await client.delete(f"{keys}/{created['id']}", headers=headers)

    page = await client.get(
        f"/v1/projects/{world.project_id}/audit-events",
        headers=bearer(admin),
        params={"key_id": created["id"]},
    )
    assert page.status_code == 200
    events = page.json()["data"]
    assert [e["action"] for e in events] == [
        "api_key.deleted",
        "api_key.updated",
        "api_key.created",
    ]
    for event in events:
        assert event["actor_key_id"] == admin_id
        assert event["actor_user_id"] == world.owner_id
        assert event["ip"] == "127.0.0.1"
        assert event["user_agent"] == "crm-sync/1.0"
    assert events[1]["data"]["name"] == ["a", "b"]
    rotated = await client.get(
        f"/v1/projects/{world.project_id}/audit-events",
        headers=bearer(admin),
        params={"action": "api_key.rotated", "limit": 1},
    )
    [rotation] = rotated.json()["data"]
    assert rotation["data"]["rotated_from"] == created["id"]
    # Pagination walks the whole log once.
    seen, cursor = [], None
    while True:
        params: dict[str, str | int] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        chunk = (
            await client.get(
                f"/v1/projects/{world.project_id}/audit-events",
                headers=bearer(admin),
                params=params,
            )
        ).json()
        seen += [e["id"] for e in chunk["data"]]
        cursor = chunk["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True)
    assert len(seen) == len(set(seen)) >= 4
    outsider = await world.project_key("project:read")
    refused = await client.get(
        f"/v1/projects/{world.project_id}/audit-events", headers=bearer(outsider)
    )
    assert refused.status_code == 403


async def test_quarterly_audit_finds_unused_overdue_and_over_privileged_keys(
    client: httpx.AsyncClient, world: World
) -> None:
    busy = await world.project_key("project:read", "conversation:write", "metric:read")
    idle = await world.project_key("project:read", name="idle")
    project = f"/v1/projects/{world.project_id}"
    assert (await client.get(project + "/conversations", headers=bearer(busy))).status_code == 200
    await world.runtime.changes.flush()
    idle_id = (await world.runtime.verifier.verify(f"Bearer {idle}")).id
    async with world.runtime.transaction() as db:
        await db.execute(
            update(ApiKey)
            .where(ApiKey.id == idle_id)
            .values(created_at=utcnow() - timedelta(days=120), last_used_at=None)
        )
    async with world.runtime.sessions() as db:
        report = {entry["name"]: entry for entry in await key_report(db, world.project_id)}
    assert report["idle"]["findings"] == ["never used", "rotation overdue (120 days old)"]
    busy_entry = report["test key"]
    # conversation:read was used; write was not, nor metric:read nor project:read.
    assert busy_entry["unused_permissions"] == [
        "conversation:write",
        "metric:read",
        "project:read",
    ]
    assert busy_entry["findings"] == [
        "over-privileged: unused conversation:write, metric:read, project:read"
    ]
