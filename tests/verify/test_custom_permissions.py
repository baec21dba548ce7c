"""Permissions of an organization's own API (issue 10): registered per project, granted to
that project's keys with the catalog's dependency rules, checked by the verifier."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import World, bearer
from tests.verify.test_verify_endpoint import verify


def _path(world: World, project_id: int | None = None) -> str:
    return f"/v1/projects/{project_id or world.project_id}/permissions"


async def register(
    client: httpx.AsyncClient, world: World, admin: str, name: str, **extra: Any
) -> httpx.Response:
    return await client.post(
        _path(world, extra.pop("project_id", None)),
        headers=bearer(admin),
        json={"name": name, **extra},
    )


async def test_register_grant_and_verify(client: httpx.AsyncClient, world: World) -> None:
    admin = await world.user_key("api_key:read", "api_key:write", "project:read")
    read = await register(client, world, admin, "invoices:read", description="Read invoices")
    assert read.status_code == 201, read.text
    assert read.json()["implies"] == []
    write = await register(client, world, admin, "invoices:write")
    assert write.json()["implies"] == ["invoices:read"]  # write ⇒ read by default
    listed = await client.get(_path(world), headers=bearer(admin))
    assert [p["name"] for p in listed.json()["data"]] == ["invoices:read", "invoices:write"]

    created = await client.post(
        f"/v1/projects/{world.project_id}/api-keys",
        headers=bearer(admin),
        json={"name": "Billing service", "permissions": ["invoices:write", "project:read"]},
    )
    assert created.status_code == 201, created.text
    assert created.json()["permissions"] == ["invoices:read", "invoices:write", "project:read"]
    key, key_id = created.json()["secret"], created.json()["id"]

    body = await verify(client, admin, key=key, permission="invoices:read")
    assert body["valid"] is True
    assert body["permissions"] == ["invoices:read", "invoices:write", "project:read"]

    # Removing a permission that a held one needs is refused, as for built-in ones.
    edit = await client.patch(
        f"/v1/projects/{world.project_id}/api-keys/{key_id}",
        headers=bearer(admin),
        json={"permissions": ["invoices:write"]},
    )
    assert edit.status_code == 422
    assert edit.json()["error"] == "permission_dependency"
    edit = await client.patch(
        f"/v1/projects/{world.project_id}/api-keys/{key_id}",
        headers=bearer(admin),
        json={"permissions": ["invoices:read", "project:read"]},
    )
    assert edit.status_code == 200, edit.text
    denied = await verify(client, admin, key=key, permission="invoices:write")
    assert denied["code"] == "insufficient_permissions"
    assert denied["required"] == "invoices:write"


async def test_names_are_checked(client: httpx.AsyncClient, world: World) -> None:
    admin = await world.user_key("api_key:read", "api_key:write")
    for name in ("knowledge:read", "conversation:delete", "Invoices:read", "invoices", "a:b:c"):
        response = await register(client, world, admin, name)
        assert response.status_code == 422, (name, response.text)
        assert response.json()["error"] == "validation_error"
    assert (await register(client, world, admin, "invoices:read")).status_code == 201
    duplicate = await register(client, world, admin, "invoices:read")
    assert duplicate.status_code == 409
    unknown = await register(client, world, admin, "invoices:pay", implies=["invoices:refund"])
    assert unknown.status_code == 422
    assert "invoices:refund" in unknown.json()["message"]


async def test_another_projects_permissions_are_not_grantable(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = await world.user_key("api_key:read", "api_key:write")
    other = await world.project()
    assert (
        await register(client, world, admin, "reports:read", project_id=other)
    ).status_code == 201
    refused = await client.post(
        f"/v1/projects/{world.project_id}/api-keys",
        headers=bearer(admin),
        json={"name": "x", "permissions": ["reports:read"]},
    )
    assert refused.status_code == 422
    assert refused.json()["error"] == "validation_error"
    user_key = await client.post(
        "/v1/me/api-keys",
        headers=bearer(admin),
        json={"name": "x", "permissions": ["reports:read"]},
    )
    assert user_key.status_code == 422
    assert "project key" in user_key.json()["message"]
    # A key of this project never holds the other project's permission.
    key = await world.project_key("project:read")
    body = await verify(client, admin, key=key, permission="reports:read")
    assert body["code"] == "insufficient_permissions"


async def test_deleting_takes_it_from_keys_at_once(client: httpx.AsyncClient, world: World) -> None:
    admin = await world.user_key("api_key:read", "api_key:write")
    await register(client, world, admin, "invoices:read")
    await register(client, world, admin, "invoices:write")
    key = await world.project_key("invoices:write")
    assert (await verify(client, admin, key=key, permission="invoices:write"))["valid"] is True
    blocked = await client.delete(_path(world) + "/invoices:read", headers=bearer(admin))
    assert blocked.status_code == 422  # invoices:write implies it
    deleted = await client.delete(_path(world) + "/invoices:write", headers=bearer(admin))
    assert deleted.status_code == 204
    body = await verify(client, admin, key=key)
    assert body["permissions"] == ["invoices:read"]
    # The name is unknown now: asking for it is the caller's mistake.
    asked = await client.post(
        "/v1/keys/verify", headers=bearer(admin), json={"key": key, "permission": "invoices:write"}
    )
    assert asked.status_code == 422
    missing = await client.delete(_path(world) + "/invoices:write", headers=bearer(admin))
    assert missing.status_code == 404


async def test_managing_needs_api_key_permissions(client: httpx.AsyncClient, world: World) -> None:
    reader = await world.user_key("api_key:read")
    refused = await register(client, world, reader, "invoices:read")
    assert refused.status_code == 403
    project_key = await world.project_key("project:read")
    assert (await client.get(_path(world), headers=bearer(project_key))).status_code == 403
    assert (await client.get(_path(world))).status_code == 401


async def test_the_quarterly_audit_counts_verified_custom_permissions_as_used(
    client: httpx.AsyncClient, world: World
) -> None:
    from keyplane.services import audit

    admin = await world.user_key("api_key:read", "api_key:write")
    await register(client, world, admin, "invoices:read")
    await register(client, world, admin, "reports:read")
    secret = await world.project_key("invoices:read", "reports:read", name="second")
    assert (await verify(client, admin, key=secret, permission="invoices:read"))["valid"]
    await world.runtime.changes.flush()
    async with world.runtime.sessions() as db:
        report = {r["name"]: r for r in await audit.key_report(db, world.project_id)}
    assert report["second"]["unused_permissions"] == ["reports:read"]
