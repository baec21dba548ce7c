"""The audit log and the quarterly key audit (issue 7)."""

from __future__ import annotations

from datetime import datetime, timedelta

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
    assert report["idle"]["findings"] == [
        "never used",
        "rotation overdue (120 days old; schedule 90 days)",
    ]
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


async def test_rotation_schedule_follows_the_key_label(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = await world.user_key(*sorted(PROJECT_PERMISSIONS))
    keys = f"/v1/projects/{world.project_id}/api-keys"
    made = {}
    for label, days in (("contractor", 30), ("development", 180), (None, 90)):
        body = {"name": str(label), "permissions": [], **({"label": label} if label else {})}
        key = (await client.post(keys, headers=bearer(admin), json=body)).json()
        made[label] = key["id"]
        assert key["label"] == label
        created = datetime.fromisoformat(key["created_at"])
        assert datetime.fromisoformat(key["rotate_by"]) == created + timedelta(days=days)
        assert key["rotation_overdue"] is False
    async with world.runtime.transaction() as db:
        await db.execute(
            update(ApiKey)
            .where(ApiKey.id.in_(list(made.values())))
            .values(created_at=utcnow() - timedelta(days=45))
        )
    listed = {k["id"]: k for k in (await client.get(keys, headers=bearer(admin))).json()["data"]}
    assert listed[made["contractor"]]["rotation_overdue"] is True
    assert listed[made["development"]]["rotation_overdue"] is False
    assert listed[made[None]]["rotation_overdue"] is False
    # Relabelling is an edit; rotation keeps the label.
    relabelled = await client.patch(
        f"{keys}/{made['development']}", headers=bearer(admin), json={"label": "contractor"}
    )
    assert relabelled.json()["rotation_overdue"] is True
    rotated = await client.post(f"{keys}/{made['contractor']}/rotate", headers=bearer(admin))
    assert rotated.json()["label"] == "contractor"
    assert rotated.json()["rotation_overdue"] is False
    bad = await client.post(
        keys, headers=bearer(admin), json={"name": "x", "permissions": [], "label": "forever"}
    )
    assert bad.status_code == 422


async def test_audit_report_names_owner_and_flags_vague_names(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = await world.user_key(*sorted(PROJECT_PERMISSIONS))
    keys = f"/v1/projects/{world.project_id}/api-keys"
    for name in ("key 2", "Production CRM Sync"):
        response = await client.post(
            keys, headers=bearer(admin), json={"name": name, "permissions": []}
        )
        assert response.status_code == 201
    async with world.runtime.sessions() as db:
        report = {entry["name"]: entry for entry in await key_report(db, world.project_id)}
    assert report["Production CRM Sync"]["findings"] == []
    assert report["Production CRM Sync"]["created_by"] == world.email
    assert report["key 2"]["findings"][0].startswith("non-descriptive name 'key 2'")


async def test_membership_changes_are_audited(client: httpx.AsyncClient, world: World) -> None:
    from keyplane.services import accounts
    from tests.conftest import PASSWORD

    async with world.runtime.transaction() as db:
        member = await accounts.create_user(db, "client@example.com", PASSWORD)
        await accounts.set_org_role(db, world.org_id, member.id, "o_member", world.owner_id)
        await accounts.add_project_role(db, world.project_id, member.id, "p_viewer", world.owner_id)
        await accounts.remove_project_member(db, world.project_id, member.id, world.owner_id)
    admin = await world.user_key("api_key:read")
    events = (
        await client.get(f"/v1/projects/{world.project_id}/audit-events", headers=bearer(admin))
    ).json()["data"]
    actions = [(e["action"], e["data"].get("user_id")) for e in events if e["actor_user_id"]]
    assert actions[:2] == [
        ("member.project_removed", member.id),
        ("member.project_role_added", member.id),
    ]
