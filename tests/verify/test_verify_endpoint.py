"""POST /v1/keys/verify (issue 10): keyplane keys for any API, on both database backends."""

from __future__ import annotations

from typing import Any

import httpx

from keyplane.domain.keyformat import Mode, generate
from keyplane.domain.permissions import Permission
from keyplane.services import accounts
from keyplane.services.keys import Actor
from tests.conftest import PASSWORD, World, bearer

VERIFY = "/v1/keys/verify"


async def verify(client: httpx.AsyncClient, caller: str, **body: Any) -> Any:
    response = await client.post(VERIFY, headers=bearer(caller), json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def _key_id(world: World, key: str) -> str:
    return (await world.runtime.verifier.verify(f"Bearer {key}")).id


async def test_a_valid_key_with_its_identity_and_rate_limit(
    client: httpx.AsyncClient, world: World
) -> None:
    caller = await world.user_key("api_key:read")
    key = await world.project_key("knowledge:write", rate_limit={"per_minute": 50})
    body = await verify(client, caller, key=key, permission="knowledge:read")
    assert body["valid"] is True
    assert body["code"] == "VALID"
    assert body["key_id"] == await _key_id(world, key)
    assert (body["project_id"], body["mode"], body["kind"]) == (world.project_id, "live", "project")
    assert body["permissions"] == ["knowledge:read", "knowledge:write"]  # closed over
    assert body["ratelimit"]["limit"] == 50
    assert 0 <= body["ratelimit"]["remaining"] < 50 + 9
    # Without a permission to check, the key is only authenticated.
    assert (await verify(client, caller, key=key))["valid"] is True


async def test_failures_carry_the_error_codes_of_design_4(
    client: httpx.AsyncClient, world: World
) -> None:
    caller = await world.user_key("api_key:read")
    key = await world.project_key("project:read")
    missing = await verify(client, caller, key=key, permission="knowledge:read")
    assert (missing["valid"], missing["code"], missing["required"]) == (
        False,
        "insufficient_permissions",
        "knowledge:read",
    )
    assert missing["key_id"] is not None
    assert missing["ratelimit"] is not None
    other = await world.project()
    mismatch = await verify(client, caller, key=key, project_id=other)
    assert mismatch["code"] == "project_mismatch"

    malformed = await verify(client, caller, key="sk_live_short")
    assert malformed["code"] == "malformed_api_key"
    assert malformed["key_id"] is None
    unknown = await verify(client, caller, key=generate(Mode.LIVE))
    assert unknown["code"] == "invalid_api_key"
    assert unknown["key_id"] is None

    restricted = await world.project_key("project:read", ip_allowlist=["10.0.0.0/8"])
    assert (await verify(client, caller, key=restricted))["code"] == "ip_not_allowed"
    assert (await verify(client, caller, key=restricted, ip="10.1.2.3"))["valid"] is True


async def test_revocation_is_seen_on_the_next_verification(
    client: httpx.AsyncClient, world: World
) -> None:
    caller = await world.user_key("api_key:read", "api_key:write")
    key = await world.project_key("project:read")
    assert (await verify(client, caller, key=key))["valid"] is True  # now cached
    key_id = await _key_id(world, key)
    deleted = await client.delete(
        f"/v1/projects/{world.project_id}/api-keys/{key_id}", headers=bearer(caller)
    )
    assert deleted.status_code == 204
    body = await verify(client, caller, key=key)
    assert (body["valid"], body["code"], body["key_id"]) == (False, "api_key_revoked", key_id)


async def test_verifications_count_towards_the_keys_limits_and_usage(
    client: httpx.AsyncClient, world: World
) -> None:
    caller = await world.user_key("api_key:read")
    key = await world.project_key("project:read", rate_limit={"per_minute": 1})  # capacity 2
    codes = [(await verify(client, caller, key=key))["code"] for _ in range(3)]
    assert codes == ["VALID", "VALID", "rate_limit_exceeded"]
    limited = await verify(client, caller, key=key)
    assert limited["retry_after"] >= 1
    assert limited["ratelimit"]["remaining"] == 0
    # The key is spent for the platform API too: one budget.
    direct = await client.get(f"/v1/projects/{world.project_id}", headers=bearer(key))
    assert direct.status_code == 429

    await world.runtime.changes.flush()
    admin = await world.user_key("api_key:read")
    usage = await client.get(
        f"/v1/projects/{world.project_id}/api-keys/{await _key_id(world, key)}/usage",
        headers=bearer(admin),
        params={"group_by": "day"},
    )
    [day] = usage.json()["data"]
    assert (day["success"], day["rate_limited"]) == (2, 3)


async def test_keys_of_another_organization_look_like_no_key(
    client: httpx.AsyncClient, world: World
) -> None:
    caller = await world.user_key("api_key:read")
    async with world.runtime.transaction() as db:
        other = await accounts.bootstrap(db, email="rival@example.com", password=PASSWORD)
    rival = World(world.runtime, other.org_id, other.user_id, other.project_id, "rival")
    live = await rival.project_key("project:read", rate_limit={"per_minute": 1})
    revoked = await rival.project_key("project:read")
    async with world.runtime.transaction() as db:
        row, _ = await world.runtime.keys.project_key(
            db,
            Actor.operator(),
            other.project_id,
            await _key_id(rival, revoked),
            Permission.API_KEY_WRITE,
        )
        await world.runtime.keys.revoke(db, Actor.operator(), row)
    nobody = await verify(client, caller, key=generate(Mode.LIVE))
    for key in (live, revoked):
        for permission in (None, "project:read"):
            body = await verify(
                client, caller, key=key, **({"permission": permission} if permission else {})
            )
            assert body == nobody | {"message": body["message"]}
            assert body["message"] == nobody["message"]
    # ... and nothing was counted against the rival's key.
    assert (
        await client.get(f"/v1/projects/{other.project_id}", headers=bearer(live))
    ).status_code == 200
    assert (
        await client.get(f"/v1/projects/{other.project_id}", headers=bearer(live))
    ).status_code == 200


async def test_the_caller_needs_a_user_key_with_api_key_read(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await world.project_key("project:read")
    missing = await client.post(VERIFY, json={"key": key})
    assert missing.status_code == 401
    assert missing.json()["error"] == "missing_authorization"
    project_key = await world.project_key("project:read")
    refused = await client.post(VERIFY, headers=bearer(project_key), json={"key": key})
    assert refused.status_code == 403
    assert refused.json()["required"] == "api_key:read"
    without = await world.user_key("project:read")
    refused = await client.post(VERIFY, headers=bearer(without), json={"key": key})
    assert refused.status_code == 403


async def test_keys_of_projects_the_caller_cannot_read_look_like_no_key(
    client: httpx.AsyncClient, world: World
) -> None:
    mine = await world.project()
    async with world.runtime.transaction() as db:
        member = await accounts.create_user(db, "member@example.com", PASSWORD)
        await accounts.set_org_role(db, world.org_id, member.id, "o_member")
        await accounts.add_project_role(db, world.project_id, member.id, "p_viewer")
        await accounts.add_project_role(db, mine, member.id, "p_owner")
    caller = await world.user_key("api_key:read", user_id=member.id)
    elsewhere = await world.project_key("project:read")
    here = await world.project_key("project:read", project_id=mine)
    assert (await verify(client, caller, key=elsewhere))["code"] == "invalid_api_key"
    assert (await verify(client, caller, key=here))["valid"] is True


async def test_bad_input_gets_the_standard_errors(client: httpx.AsyncClient, world: World) -> None:
    caller = await world.user_key("api_key:read")
    key = await world.project_key("project:read")
    for body in (
        {},
        {"key": ""},
        {"key": key, "permission": "project:read", "surprise": 1},
        {"key": key, "project_id": 0},
        {"key": key, "ip": "not an address"},
        {"key": key, "permission": "invoices:read"},  # registered nowhere
        {"key": key, "permission": "no such thing"},
    ):
        response = await client.post(VERIFY, headers=bearer(caller), json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"] == "validation_error"
        assert key not in response.text
    unreadable = await client.post(
        VERIFY, headers=bearer(caller) | {"content-type": "application/json"}, content=b"{"
    )
    assert unreadable.status_code == 422
