"""A change made through one instance is enforced by every other instance on its very next
request, through the version the Redis rate-limit round trip returns (DESIGN §5)."""

from __future__ import annotations

import httpx

from keyplane.api.app import create_app
from keyplane.runtime import Runtime
from keyplane.services.keys import Actor, KeyChanges
from keyplane.settings import Settings
from tests.conftest import World, bearer


def _project(world: World) -> str:
    return f"/v1/projects/{world.project_id}"


async def test_a_revocation_reaches_every_instance_on_its_next_request(
    settings: Settings, world: World, redis_url: str
) -> None:
    """Two instances on one database and one Redis, the change feed effectively off: the
    version returned by the limiter's round trip is what tells instance B."""
    quiet = settings.model_copy(update={"change_poll_seconds": 3600, "redis_url": redis_url})
    key = await world.project_key("project:read", "conversation:read")
    first = await Runtime.start(quiet, migrate=False)
    second = await Runtime.start(quiet, migrate=False)
    try:
        clients = [
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(rt)), base_url="http://t"
            )
            for rt in (first, second)
        ]
        for client in clients:  # both have the key cached
            assert (await client.get(_project(world), headers=bearer(key))).status_code == 200
        key_id = (await first.verifier.verify(f"Bearer {key}")).id
        async with first.transaction() as db:
            row, held = await first.keys.project_key(
                db,
                Actor.operator(),
                world.project_id,
                key_id,
                "api_key:write",  # type: ignore[arg-type]
            )
            await first.keys.update(
                db,
                Actor.operator(),
                row,
                KeyChanges(permissions=["conversation:read"], sent=frozenset({"permissions"})),
                held,
            )
        edited = await clients[1].get(_project(world), headers=bearer(key))
        assert edited.status_code == 403
        assert edited.json()["required"] == "project:read"
        async with first.transaction() as db:
            row, _ = await first.keys.project_key(
                db,
                Actor.operator(),
                world.project_id,
                key_id,
                "api_key:write",  # type: ignore[arg-type]
            )
            await first.keys.revoke(db, Actor.operator(), row)
        revoked = await clients[1].get(_project(world) + "/conversations", headers=bearer(key))
        assert revoked.status_code == 401
        assert revoked.json()["error"] == "api_key_revoked"
        for client in clients:
            await client.aclose()
    finally:
        await first.close()
        await second.close()
