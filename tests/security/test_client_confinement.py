"""Reseller clients (issue 12): a client member reaches only the projects assigned to them —
with their user keys, in key management and in the dashboard — checked on every request, so
that removing an assignment takes effect at once, on every instance."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from keyplane.api.app import create_app
from keyplane.domain.errors import Conflict, InsufficientPermissions
from keyplane.domain.keyformat import Mode
from keyplane.runtime import Runtime
from keyplane.services import accounts, clients, members
from keyplane.services.keys import Actor, KeySpec
from keyplane.settings import Settings
from tests.conftest import PASSWORD, TEST_SECRET, World, bearer


@pytest.fixture
def settings(database_url: str, tmp_path: Path, limiter_backend: str | None) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=limiter_backend,
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
        data_dir=tmp_path,
        change_poll_seconds=0.05,
        _env_file=None,  # type: ignore[call-arg]
    )


@dataclass
class Reseller:
    world: World
    alice: int  # client of project A
    bob: int  # client of project B
    a: int
    b: int


async def make_client(world: World, email: str, *projects: int, role: str = "p_owner") -> int:
    async with world.runtime.transaction() as db:
        user = await accounts.create_user(db, email, PASSWORD)
        await accounts.set_org_role(db, world.org_id, user.id, "o_member")
        await clients.set_client(db, world.owner_id, world.org_id, user.id, client=True)
        for project_id in projects:
            await clients.assign(db, world.owner_id, world.org_id, user.id, project_id, role)
    return user.id


@pytest.fixture
async def reseller(world: World) -> Reseller:
    async with world.runtime.transaction() as db:
        project = await accounts.get_project(db, world.project_id)
        project.name = "Acme support bot"
    b = await world.project("Globex sales bot")
    alice = await make_client(world, "alice@acme.example", world.project_id)
    bob = await make_client(world, "bob@globex.example", b)
    return Reseller(world, alice, bob, world.project_id, b)


async def test_a_client_key_reaches_only_assigned_projects(
    client: httpx.AsyncClient, reseller: Reseller
) -> None:
    world = reseller.world
    key = await world.user_key("project:read", "conversation:read", user_id=reseller.alice)
    assert (await client.get(f"/v1/projects/{reseller.a}", headers=bearer(key))).status_code == 200
    other = await client.get(f"/v1/projects/{reseller.b}", headers=bearer(key))
    assert other.status_code == 403
    assert other.json()["error"] == "project_mismatch"
    assert "Globex" not in other.text
    # Unknown projects look the same as other clients' projects.
    unknown = await client.get("/v1/projects/999999", headers=bearer(key))
    assert unknown.status_code == 403
    assert unknown.json()["error"] == "project_mismatch"
    # Key management refuses the other project too, saying nothing about it.
    listing = await client.get(f"/v1/projects/{reseller.b}/api-keys", headers=bearer(key))
    assert listing.status_code == 403
    assert "Globex" not in listing.text


async def test_org_viewer_rights_do_not_leak_to_unassigned_projects(
    client: httpx.AsyncClient, reseller: Reseller
) -> None:
    """A client's org role cannot widen their reach: o_viewer would grant read access to
    every project, so clients keep o_member."""
    world = reseller.world
    async with world.runtime.transaction() as db:
        with pytest.raises(Conflict, match="o_member"):
            await members.change_role(db, world.owner_id, world.org_id, reseller.alice, "o_viewer")
    async with world.runtime.transaction() as db:
        with pytest.raises(Conflict, match="owner"):
            await clients.set_client(db, world.owner_id, world.org_id, world.owner_id, client=True)


async def test_removing_an_assignment_takes_effect_on_the_next_request(
    client: httpx.AsyncClient, reseller: Reseller, settings: Settings
) -> None:
    world = reseller.world
    key = await world.user_key("project:read", user_id=reseller.alice)
    path = f"/v1/projects/{reseller.a}"
    # A second instance that has the client's access cached as well.
    # Without Redis it learns through the change feed, so it runs its background poll.
    other = await Runtime.start(settings, migrate=False, background=not settings.redis_url)
    transport = httpx.ASGITransport(app=create_app(other), client=("127.0.0.1", 50001))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://other.test") as two:
            assert (await client.get(path, headers=bearer(key))).status_code == 200
            assert (await two.get(path, headers=bearer(key))).status_code == 200
            async with world.runtime.transaction() as db:
                await clients.unassign(db, world.owner_id, world.org_id, reseller.alice, reseller.a)
            refused = await client.get(path, headers=bearer(key))
            assert refused.status_code == 403
            assert refused.json()["error"] == "project_mismatch"
            if settings.redis_url:  # versions travel with the limiter's round trip
                again = await two.get(path, headers=bearer(key))
            else:  # the change feed, polled every 0.05 s here (0.5 s by default)
                for _ in range(100):
                    again = await two.get(path, headers=bearer(key))
                    if again.status_code == 403:
                        break
                    await asyncio.sleep(0.02)
            assert again.status_code == 403
            assert again.json()["error"] == "project_mismatch"
            # Assigned again: back at once.
            async with world.runtime.transaction() as db:
                await clients.assign(
                    db, world.owner_id, world.org_id, reseller.alice, reseller.a, "p_viewer"
                )
            assert (await client.get(path, headers=bearer(key))).status_code == 200
    finally:
        await other.close()


async def test_client_user_keys_cannot_be_created_beyond_assignments(
    client: httpx.AsyncClient, reseller: Reseller
) -> None:
    """Bob only views his project: his user key can hold no more than p_viewer grants."""
    world = reseller.world
    async with world.runtime.transaction() as db:
        await clients.unassign(db, world.owner_id, world.org_id, reseller.bob, reseller.b)
        await clients.assign(db, world.owner_id, world.org_id, reseller.bob, reseller.b, "p_viewer")
    key = await world.user_key("api_key:read", user_id=reseller.alice)
    assert (
        await client.get(f"/v1/projects/{reseller.a}/api-keys", headers=bearer(key))
    ).status_code == 200
    spec = KeySpec(name="bob", permissions=["conversation:write"], mode=Mode.LIVE)
    async with world.runtime.transaction() as db:
        with pytest.raises(InsufficientPermissions):
            await world.runtime.keys.create_user_key(
                db, Actor(user_id=reseller.bob), reseller.bob, spec
            )


async def test_revoke_everything_a_client_holds(
    client: httpx.AsyncClient, reseller: Reseller
) -> None:
    world = reseller.world
    user_key = await world.user_key("project:read", user_id=reseller.alice)
    bob_key = await world.user_key("project:read", user_id=reseller.bob)
    async with world.runtime.transaction() as db:
        issued = await world.runtime.keys.create_project_key(
            db,
            Actor(user_id=reseller.alice),
            reseller.a,
            KeySpec(name="alice widget", permissions=["project:read"], mode=Mode.LIVE),
        )
    async with world.runtime.transaction() as db:
        listed = await clients.overview(db, world.owner_id, world.org_id)
    alice = next(c for c in listed if c.user_id == reseller.alice)
    assert [p[1] for p in alice.projects] == ["Acme support bot"]
    assert {k.name for k in alice.keys} == {"user key", "alice widget"}
    async with world.runtime.transaction() as db:
        count = await clients.revoke_everything(
            db, world.runtime.keys, Actor(user_id=world.owner_id), world.org_id, reseller.alice
        )
    assert count == 2
    for secret in (user_key, issued.secret):
        gone = await client.get(f"/v1/projects/{reseller.a}", headers=bearer(secret))
        assert gone.status_code == 401
        assert gone.json()["error"] == "api_key_revoked"
    # Bob's key is untouched.
    assert (
        await client.get(f"/v1/projects/{reseller.b}", headers=bearer(bob_key))
    ).status_code == 200
