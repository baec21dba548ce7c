"""Unkey v2 compatibility (issue 10): the real `unkey.py` client from PyPI, pointed at a live
keyplane server by its server URL alone, verifies keyplane keys."""

from __future__ import annotations

import httpx
import pytest
from unkey.py import Unkey, errors, models

from keyplane.domain.keyformat import Mode, generate
from keyplane.services import accounts, custom_permissions
from keyplane.services.keys import Actor
from tests.conftest import PASSWORD, World
from tests.sdk.conftest import LiveServer, live_server  # noqa: F401  (fixture)


async def _key_id(world: World, key: str) -> str:
    return (await world.runtime.verifier.verify(f"Bearer {key}")).id


async def test_the_unkey_client_verifies_keyplane_keys(
    live_server: LiveServer,  # noqa: F811
) -> None:
    world = live_server.world
    root_key = await world.user_key("api_key:read")
    unkey = Unkey(root_key=root_key, server_url=live_server.base_url)
    async with world.runtime.transaction() as db:
        for name in ("documents:read", "documents:write"):
            await custom_permissions.register(
                db, world.runtime.keys, Actor.operator(), world.project_id, name
            )
    key = await world.project_key("documents:read", "project:read", rate_limit={"per_minute": 1})

    # A valid key, with a permission query in Unkey's own spelling (documents.read).
    valid = unkey.keys.verify_key(key=key, permissions="documents.read AND project:read")
    assert valid.data.valid is True
    assert valid.data.code == models.Code.VALID
    assert valid.data.key_id == await _key_id(world, key)
    assert valid.data.keyspace_id == str(world.project_id)
    assert valid.data.permissions == ["documents:read", "project:read"]
    assert valid.data.ratelimits is not None
    assert valid.data.ratelimits[0].limit == 1
    assert valid.meta.request_id

    # Missing permission (this call counts too: the bucket holds 2 at once).
    missing = unkey.keys.verify_key(key=key, permissions="documents.write OR knowledge:read")
    assert missing.data.valid is False
    assert missing.data.code == models.Code.INSUFFICIENT_PERMISSIONS

    # Rate limited.
    limited = unkey.keys.verify_key(key=key)
    assert limited.data.valid is False
    assert limited.data.code == models.Code.RATE_LIMITED
    assert limited.data.ratelimits is not None
    assert limited.data.ratelimits[0].exceeded is True
    assert limited.data.ratelimits[0].remaining == 0


async def test_revoked_unknown_and_foreign_keys(live_server: LiveServer) -> None:  # noqa: F811
    world = live_server.world
    root_key = await world.user_key("api_key:read")
    unkey = Unkey(root_key=root_key, server_url=live_server.base_url)
    key = await world.project_key("project:read")
    assert unkey.keys.verify_key(key=key).data.valid is True
    admin = await world.user_key("api_key:write")
    key_id = await _key_id(world, key)
    async with httpx.AsyncClient(base_url=live_server.base_url) as http:
        deleted = await http.delete(
            f"/v1/projects/{world.project_id}/api-keys/{key_id}",
            headers={"Authorization": f"Bearer {admin}"},
        )
    assert deleted.status_code == 204
    revoked = unkey.keys.verify_key(key=key)
    assert revoked.data.valid is False
    assert revoked.data.code == models.Code.DISABLED

    unknown = unkey.keys.verify_key(key=generate(Mode.LIVE))
    assert unknown.data.code == models.Code.NOT_FOUND
    assert unknown.data.key_id is None
    assert unkey.keys.verify_key(key="not a key").data.code == models.Code.NOT_FOUND

    async with world.runtime.transaction() as db:
        other = await accounts.bootstrap(db, email="rival@example.com", password=PASSWORD)
    rival = World(world.runtime, other.org_id, other.user_id, other.project_id, "rival")
    foreign = unkey.keys.verify_key(key=await rival.project_key("project:read"))
    assert foreign.data.model_dump() == unknown.data.model_dump()

    # Unkey keyspaces are keyplane projects: a key outside the listed ones does not exist.
    fresh = await world.project_key("project:read")
    elsewhere = unkey.keys.verify_key(key=fresh, keyspaces=[str(world.project_id + 1000)])
    assert elsewhere.data.code == models.Code.NOT_FOUND
    here = unkey.keys.verify_key(key=fresh, keyspaces=[str(world.project_id)])
    assert here.data.valid is True


async def test_root_key_problems_raise_unkeys_errors(
    live_server: LiveServer,  # noqa: F811
) -> None:
    world = live_server.world
    key = await world.project_key("project:read")
    with pytest.raises(errors.UnauthorizedErrorResponse) as unauthorized:
        Unkey(root_key=generate(Mode.LIVE), server_url=live_server.base_url).keys.verify_key(
            key=key
        )
    assert unauthorized.value.data.error.status == 401
    project_key_as_root = Unkey(root_key=key, server_url=live_server.base_url)
    with pytest.raises(errors.ForbiddenErrorResponse):
        project_key_as_root.keys.verify_key(key=key)
    root = Unkey(root_key=await world.user_key("api_key:read"), server_url=live_server.base_url)
    with pytest.raises(errors.BadRequestErrorResponse) as bad:
        root.keys.verify_key(key=key, permissions="project:read AND (")
    assert "permissions query" in bad.value.data.error.detail
    with pytest.raises(errors.BadRequestErrorResponse) as unknown:
        root.keys.verify_key(key=key, permissions="nothing.registered")
    assert "nothing:registered" in unknown.value.data.error.detail
