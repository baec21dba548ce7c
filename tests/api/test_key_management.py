"""The key management API of DESIGN §7, through sessions and user keys."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select, update

from keyplane.adapters.sql.models import AuditEvent
from keyplane.adapters.sql.models import Session as SessionRow
from keyplane.adapters.sql.repositories import utcnow
from keyplane.domain.keyformat import KEY_LENGTH
from keyplane.domain.permissions import PROJECT_PERMISSIONS
from keyplane.services import accounts
from tests.conftest import PASSWORD, World, bearer

# A user key acting for the owner can only grant what it holds itself, so the admin key used
# by these tests holds every project permission.
EVERYTHING = sorted(PROJECT_PERMISSIONS)


def _keys(world: World, suffix: str = "") -> str:
    return f"/v1/projects/{world.project_id}/api-keys{suffix}"


async def _sign_in(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await client.post("/v1/session", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    assert "httponly" in response.headers["set-cookie"].lower()
    return {"X-CSRF-Token": response.json()["csrf_token"]}


async def test_create_shows_the_secret_once_and_never_again(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = await world.user_key(*EVERYTHING)
    response = await client.post(
        _keys(world),
        headers=bearer(admin),
        json={"name": "CRM Sync", "permissions": ["userpool:update"]},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    secret = created["secret"]
    assert len(secret) == KEY_LENGTH
    assert secret.startswith("sk_live_")
    assert created["permissions"] == ["userpool:read", "userpool:update"]  # closure
    assert created["hint"] == "…" + secret[-4:]
    assert created["kind"] == "project"
    assert created["mode"] == "live"

    listed = await client.get(_keys(world), headers=bearer(admin))
    shown = await client.get(_keys(world, f"/{created['id']}"), headers=bearer(admin))
    for response in (listed, shown):
        assert response.status_code == 200
        assert secret not in response.text
        assert secret[8:-4] not in response.text
        assert '"secret"' not in response.text
    assert listed.json()["data"][0]["id"] == created["id"]
    # The new key works at once for what it holds, and only for that.
    project = f"/v1/projects/{world.project_id}"
    assert (await client.get(project, headers=bearer(secret))).status_code == 403
    users = await client.get(project + "/conversations", headers=bearer(secret))
    assert users.json()["required"] == "conversation:read"


async def test_the_eleventh_key_gets_a_clear_409(client: httpx.AsyncClient, world: World) -> None:
    admin = await world.user_key(*EVERYTHING)
    for number in range(10):
        response = await client.post(
            _keys(world),
            headers=bearer(admin),
            json={"name": f"key {number}", "permissions": ["project:read"]},
        )
        assert response.status_code == 201
    response = await client.post(
        _keys(world), headers=bearer(admin), json={"name": "one too many", "permissions": []}
    )
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "key_limit_reached"
    assert "10" in body["message"]
    assert body["limit"] == 10
    # Deleting one makes room again.
    first = (await client.get(_keys(world), headers=bearer(admin))).json()["data"][0]["id"]
    assert (
        await client.delete(_keys(world, f"/{first}"), headers=bearer(admin))
    ).status_code == 204
    response = await client.post(
        _keys(world), headers=bearer(admin), json={"name": "room again", "permissions": []}
    )
    assert response.status_code == 201


async def test_keys_cannot_hold_org_permissions_or_key_admin_on_project_keys(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = await world.user_key(*EVERYTHING)
    for permissions in (["billing:read"], ["member:write", "project:read"], ["api_key:read"]):
        response = await client.post(
            _keys(world), headers=bearer(admin), json={"name": "x", "permissions": permissions}
        )
        assert response.status_code == 400, permissions
        assert response.json()["error"] == "org_permission_not_allowed"
    response = await client.post(
        _keys(world), headers=bearer(admin), json={"name": "x", "permissions": ["nope:read"]}
    )
    assert response.status_code == 422
    assert "nope:read" in response.json()["message"]


async def test_nobody_grants_what_they_do_not_hold(client: httpx.AsyncClient, world: World) -> None:
    async with world.runtime.transaction() as db:
        member = await accounts.create_user(db, "keys@example.com", PASSWORD)
        await accounts.set_org_role(db, world.org_id, member.id, "o_member")
        await accounts.define_custom_role(
            db, world.org_id, "key-manager", ["api_key:write", "conversation:read"]
        )
        await accounts.add_project_role(db, world.project_id, member.id, "key-manager")
    headers = await _sign_in(client, "keys@example.com")
    allowed = await client.post(
        _keys(world), headers=headers, json={"name": "ok", "permissions": ["conversation:read"]}
    )
    assert allowed.status_code == 201, allowed.text
    refused = await client.post(
        _keys(world), headers=headers, json={"name": "no", "permissions": ["knowledge:write"]}
    )
    assert refused.status_code == 403
    assert refused.json()["error"] == "insufficient_permissions"
    assert refused.json()["required"] in {"knowledge:read", "knowledge:write"}
    # Nor by editing an existing key.
    key_id = allowed.json()["id"]
    edited = await client.patch(
        _keys(world, f"/{key_id}"), headers=headers, json={"permissions": ["metric:read"]}
    )
    assert edited.status_code == 403
    assert edited.json()["required"] == "metric:read"


async def test_edit_closes_over_dependencies_and_refuses_breaking_them(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = await world.user_key(*EVERYTHING)
    created = await client.post(
        _keys(world), headers=bearer(admin), json={"name": "docs", "permissions": []}
    )
    key_id = created.json()["id"]
    edited = await client.patch(
        _keys(world, f"/{key_id}"),
        headers=bearer(admin),
        json={"name": "Docs sync", "permissions": ["knowledge:write"]},
    )
    assert edited.status_code == 200
    assert edited.json()["name"] == "Docs sync"
    assert edited.json()["permissions"] == ["knowledge:read", "knowledge:write"]
    refused = await client.patch(
        _keys(world, f"/{key_id}"),
        headers=bearer(admin),
        json={"permissions": ["knowledge:write"]},  # drops knowledge:read, which write needs
    )
    assert refused.status_code == 422
    body = refused.json()
    assert body["error"] == "permission_dependency"
    assert "knowledge:read" in body["message"]
    assert "knowledge:write" in body["message"]
    removed = await client.patch(
        _keys(world, f"/{key_id}"), headers=bearer(admin), json={"permissions": []}
    )
    assert removed.json()["permissions"] == []


async def test_rotation_keeps_the_old_secret_for_the_grace_period(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = await world.user_key(*EVERYTHING)
    created = (
        await client.post(
            _keys(world),
            headers=bearer(admin),
            json={"name": "ci", "permissions": ["project:read"]},
        )
    ).json()
    project = f"/v1/projects/{world.project_id}"
    rotated = await client.post(_keys(world, f"/{created['id']}/rotate"), headers=bearer(admin))
    assert rotated.status_code == 201
    new = rotated.json()
    assert new["rotated_from"] == created["id"]
    assert new["secret"] != created["secret"]
    assert new["permissions"] == created["permissions"]
    assert (await client.get(project, headers=bearer(new["secret"]))).status_code == 200
    assert (await client.get(project, headers=bearer(created["secret"]))).status_code == 200

    immediate = await client.post(
        _keys(world, f"/{new['id']}/rotate"), headers=bearer(admin), json={"grace_seconds": 0}
    )
    assert immediate.status_code == 201
    old = await client.get(project, headers=bearer(new["secret"]))
    assert old.status_code == 401
    assert old.json()["error"] == "api_key_revoked"
    newest = immediate.json()["secret"]
    assert (await client.get(project, headers=bearer(newest))).status_code == 200


async def test_delete_is_immediate(client: httpx.AsyncClient, world: World) -> None:
    admin = await world.user_key(*EVERYTHING)
    key = await world.project_key("project:read")
    key_id = (await world.runtime.verifier.verify(f"Bearer {key}")).id
    project = f"/v1/projects/{world.project_id}"
    assert (await client.get(project, headers=bearer(key))).status_code == 200
    assert (
        await client.delete(_keys(world, f"/{key_id}"), headers=bearer(admin))
    ).status_code == 204
    assert (await client.get(project, headers=bearer(key))).json()["error"] == "api_key_revoked"
    assert (await client.get(_keys(world, f"/{key_id}"), headers=bearer(admin))).status_code == 404


async def test_project_keys_can_never_manage_keys(client: httpx.AsyncClient, world: World) -> None:
    key = await world.project_key("project:read")
    response = await client.get(_keys(world), headers=bearer(key))
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_permissions"


async def test_user_key_without_api_key_scope_cannot_manage(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await world.user_key("conversation:read")
    response = await client.get(_keys(world), headers=bearer(key))
    assert response.status_code == 403
    assert response.json()["required"] == "api_key:read"


async def test_reveal_needs_a_session_with_a_recent_password(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = await world.user_key(*EVERYTHING)
    created = (
        await client.post(
            _keys(world), headers=bearer(admin), json={"name": "r", "permissions": ["project:read"]}
        )
    ).json()
    reveal = _keys(world, f"/{created['id']}/reveal")
    with_key = await client.post(reveal, headers=bearer(admin))
    assert with_key.status_code == 403
    assert with_key.json()["error"] == "session_required"

    headers = await _sign_in(client, world.email)
    no_csrf = await client.post(reveal)
    assert no_csrf.status_code == 403
    assert no_csrf.json()["error"] == "csrf_failed"
    shown = await client.post(reveal, headers=headers)
    assert shown.status_code == 200
    assert shown.json()["secret"] == created["secret"]

    async with world.runtime.transaction() as db:
        await db.execute(
            update(SessionRow).values(password_verified_at=utcnow() - timedelta(minutes=6))
        )
    stale = await client.post(reveal, headers=headers)
    assert stale.status_code == 403
    assert stale.json()["error"] == "reauthentication_required"
    wrong = await client.post(reveal, headers=headers, json={"password": "not it"})
    assert wrong.status_code == 401
    again = await client.post(reveal, headers=headers, json={"password": PASSWORD})
    assert again.status_code == 200
    assert again.json()["secret"] == created["secret"]

    async with world.runtime.sessions() as db:
        actions = (
            await db.scalars(select(AuditEvent.action).where(AuditEvent.key_id == created["id"]))
        ).all()
    assert actions.count("api_key.revealed") == 2
    assert "api_key.created" in actions


async def test_user_keys_under_me(client: httpx.AsyncClient, world: World) -> None:
    headers = await _sign_in(client, world.email)
    created = await client.post(
        "/v1/me/api-keys",
        headers=headers,
        json={"name": "Account automation", "permissions": ["conversation:read", "api_key:read"]},
    )
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["kind"] == "user"
    assert key["project_id"] is None
    listed = await client.get("/v1/me/api-keys", headers=bearer(key["secret"]))
    assert [k["id"] for k in listed.json()["data"]] == [key["id"]]
    other = await world.project()
    for project_id in (world.project_id, other):  # account-wide: every project of the org
        response = await client.get(
            f"/v1/projects/{project_id}/conversations", headers=bearer(key["secret"])
        )
        assert response.status_code == 200
    refused = await client.post(
        "/v1/me/api-keys",
        headers=headers,
        json={"name": "org", "permissions": ["org:write"]},
    )
    assert refused.status_code == 400
    deleted = await client.delete(f"/v1/me/api-keys/{key['id']}", headers=headers)
    assert deleted.status_code == 204
    gone = await client.get(
        f"/v1/projects/{world.project_id}/conversations", headers=bearer(key["secret"])
    )
    assert gone.json()["error"] == "api_key_revoked"


async def test_bad_bodies_get_clear_4xx(client: httpx.AsyncClient, world: World) -> None:
    admin = await world.user_key(*EVERYTHING)
    unknown_field = await client.post(
        _keys(world),
        headers=bearer(admin),
        json={"name": "x", "permissions": [], "permisions": ["project:read"]},
    )
    assert unknown_field.status_code == 422
    body = unknown_field.json()
    assert body["error"] == "validation_error"
    assert body["details"]
    assert "permisions" in body["message"]
    junk = await client.post(
        _keys(world),
        headers={**bearer(admin), "Content-Type": "application/json"},
        content=b"{'name': DROP TABLE api_keys;--",
    )
    assert junk.status_code == 422
    assert junk.json()["error"] == "validation_error"
    huge = await client.post(
        _keys(world),
        headers={**bearer(admin), "Content-Type": "application/json"},
        content=b'{"name": "' + b"x" * 2_000_000 + b'"}',
    )
    assert huge.status_code == 413
    assert huge.json()["error"] == "payload_too_large"
    past = await client.post(
        _keys(world),
        headers=bearer(admin),
        json={"name": "x", "permissions": [], "expires_at": "2001-01-01T00:00:00Z"},
    )
    assert past.status_code == 422
    assert "past" in past.json()["message"]
    cidr = await client.post(
        _keys(world),
        headers=bearer(admin),
        json={"name": "x", "permissions": [], "ip_allowlist": ["10.0.0.0/33"]},
    )
    assert cidr.status_code == 422
    assert "10.0.0.0/33" in cidr.json()["message"]


async def test_permissions_catalog_is_public(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/permissions")
    assert response.status_code == 200
    catalog = {p["name"]: p for p in response.json()["data"]}
    assert catalog["knowledge:write"]["implies"] == ["knowledge:read"]
    assert catalog["full_export:read"]["implies"] == ["export:read"]
    assert catalog["billing:read"]["level"] == "organization"
    assert catalog["billing:read"]["grantable_to"] == []
    assert catalog["api_key:write"]["grantable_to"] == ["user_key"]


async def test_a_user_key_cannot_grant_beyond_its_own_scopes(
    client: httpx.AsyncClient, world: World
) -> None:
    narrow = await world.user_key("api_key:write", "project:read")
    response = await client.post(
        _keys(world), headers=bearer(narrow), json={"name": "x", "permissions": ["metric:read"]}
    )
    assert response.status_code == 403
    assert response.json()["required"] == "metric:read"
    fine = await client.post(
        _keys(world), headers=bearer(narrow), json={"name": "x", "permissions": ["project:read"]}
    )
    assert fine.status_code == 201
