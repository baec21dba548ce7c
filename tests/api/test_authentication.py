"""Every 401/403 of DESIGN §4 through the HTTP API, and how fast changes are enforced."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from keyplane.api.app import create_app
from keyplane.domain.keyformat import Mode
from keyplane.domain.permissions import Permission
from keyplane.runtime import Runtime
from keyplane.services import accounts
from keyplane.services.keys import Actor, KeyChanges
from keyplane.settings import Settings
from tests.conftest import PASSWORD, World, bearer


def _url(world: World, suffix: str = "") -> str:
    return f"/v1/projects/{world.project_id}{suffix}"


async def _key_id(world: World, secret: str) -> str:
    key = await world.runtime.verifier.verify(f"Bearer {secret}")
    return key.id


async def test_revoked_key_gets_api_key_revoked_on_the_next_request(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await world.project_key("project:read")
    assert (await client.get(_url(world), headers=bearer(key))).status_code == 200
    key_id = await _key_id(world, key)
    async with world.runtime.transaction() as db:
        row, _ = await world.runtime.keys.project_key(
            db, Actor.operator(), world.project_id, key_id, Permission.API_KEY_WRITE
        )
        await world.runtime.keys.revoke(db, Actor.operator(), row)
    response = await client.get(_url(world), headers=bearer(key))
    assert response.status_code == 401
    assert response.json()["error"] == "api_key_revoked"
    assert response.headers["www-authenticate"] == 'Bearer realm="keyplane", error="invalid_token"'


async def test_expired_key(client: httpx.AsyncClient, world: World) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    key = await world.project_key("project:read", expires_at=soon)
    assert (await client.get(_url(world), headers=bearer(key))).status_code == 200
    world.runtime.verifier.clock = lambda: soon.timestamp() + 1
    response = await client.get(_url(world), headers=bearer(key))
    assert response.status_code == 401
    assert response.json()["error"] == "api_key_expired"


async def test_unknown_but_well_formed_key_is_invalid(
    client: httpx.AsyncClient, world: World
) -> None:
    from keyplane.domain.keyformat import generate

    response = await client.get(_url(world), headers=bearer(generate(Mode.LIVE)))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_api_key"


async def test_project_mismatch_names_both_ids(client: httpx.AsyncClient, world: World) -> None:
    other = await world.project()
    key = await world.project_key("project:read")
    for project_id in (other, 987654):  # an existing and an unknown project answer alike
        response = await client.get(f"/v1/projects/{project_id}", headers=bearer(key))
        assert response.status_code == 403
        body = response.json()
        assert body["error"] == "project_mismatch"
        assert str(world.project_id) in body["message"]
        assert str(project_id) in body["message"]


async def test_insufficient_permissions_names_the_permission(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await world.project_key("project:read")
    response = await client.get(_url(world, "/conversations"), headers=bearer(key))
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_permissions"
    assert response.json()["required"] == "conversation:read"


@pytest.mark.parametrize(
    ("allowlist", "status"), [(["10.0.0.0/8"], 403), (["127.0.0.0/8", "::1/128"], 200)]
)
async def test_ip_allowlist(
    client: httpx.AsyncClient, world: World, allowlist: list[str], status: int
) -> None:
    key = await world.project_key("project:read", ip_allowlist=allowlist)
    response = await client.get(_url(world), headers=bearer(key))
    assert response.status_code == status
    if status == 403:
        assert response.json()["error"] == "ip_not_allowed"


async def test_test_keys_refused_when_the_server_does_not_accept_them(
    settings: Settings, world: World
) -> None:
    key = await world.project_key("project:read", test=True)
    strict = settings.model_copy(update={"accept_test_keys": False})
    runtime = await Runtime.start(strict, migrate=False, background=False)
    try:
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as strict_client:
            response = await strict_client.get(_url(world), headers=bearer(key))
    finally:
        await runtime.close()
    assert response.status_code == 401
    assert response.json()["error"] == "wrong_environment"


async def test_permission_edit_takes_effect_on_the_next_request(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await world.project_key("project:read", "conversation:read")
    assert (await client.get(_url(world, "/conversations"), headers=bearer(key))).status_code == 200
    key_id = await _key_id(world, key)
    async with world.runtime.transaction() as db:
        row, held = await world.runtime.keys.project_key(
            db, Actor.operator(), world.project_id, key_id, Permission.API_KEY_WRITE
        )
        await world.runtime.keys.update(
            db,
            Actor.operator(),
            row,
            KeyChanges(permissions=["project:read"], sent=frozenset({"permissions"})),
            held,
        )
    response = await client.get(_url(world, "/conversations"), headers=bearer(key))
    assert response.status_code == 403
    assert response.json()["required"] == "conversation:read"


async def test_user_key_follows_its_owners_current_permissions(
    client: httpx.AsyncClient, world: World
) -> None:
    async with world.runtime.transaction() as db:
        member = await accounts.create_user(db, "member@example.com", PASSWORD)
        await accounts.set_org_role(db, world.org_id, member.id, "o_member")
        await accounts.add_project_role(db, world.project_id, member.id, "p_viewer")
    key = await world.user_key("conversation:read", "conversation:generate", user_id=member.id)
    # The key's scopes include generate, but a viewer does not hold it.
    response = await client.post(
        _url(world, "/conversations"), headers=bearer(key), json={"user_id": "u", "message": "hi"}
    )
    assert response.status_code == 403
    assert response.json()["required"] == "conversation:generate"
    assert (await client.get(_url(world, "/conversations"), headers=bearer(key))).status_code == 200

    async with world.runtime.transaction() as db:
        await accounts.remove_project_member(db, world.project_id, member.id)
    response = await client.get(_url(world, "/conversations"), headers=bearer(key))
    assert response.status_code == 403
    assert response.json()["error"] == "project_mismatch"

    async with world.runtime.transaction() as db:
        await accounts.add_project_role(db, world.project_id, member.id, "p_member")
    created = await client.post(
        _url(world, "/conversations"), headers=bearer(key), json={"user_id": "u", "message": "hi"}
    )
    assert created.status_code == 201


async def test_a_change_made_by_another_process_is_enforced_within_a_second(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    """The CLI or another API process writes the database; this process learns it from the
    change feed, not from a per-request query."""
    key = await world.project_key("project:read")
    assert (await client.get(_url(world), headers=bearer(key))).status_code == 200
    key_id = await _key_id(world, key)
    other = await Runtime.start(settings, migrate=False, background=False)
    try:
        async with other.transaction() as db:
            row, _ = await other.keys.project_key(
                db, Actor.operator(), world.project_id, key_id, Permission.API_KEY_WRITE
            )
            await other.keys.revoke(db, Actor.operator(), row)
    finally:
        await other.close()
    revoked_at = time.monotonic()
    while True:
        response = await client.get(_url(world), headers=bearer(key))
        if response.status_code == 401:
            break
        assert time.monotonic() - revoked_at < 1.0, "revocation not enforced within 1 s"
        await asyncio.sleep(0.02)
    assert response.json()["error"] == "api_key_revoked"


@contextmanager
def _statements(runtime: Runtime) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(runtime.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(runtime.engine.sync_engine, "before_cursor_execute", record)


async def test_steady_state_authentication_does_not_touch_the_database(
    client: httpx.AsyncClient, world: World
) -> None:
    project_key = await world.project_key("conversation:read")
    user_key = await world.user_key("conversation:read")
    # Let the change feed apply the set-up's own membership changes before warming up, as a
    # long-running server would have long done.
    await world.runtime.changes.poll()
    for key in (project_key, user_key):  # warm the caches
        assert (
            await client.get(_url(world, "/conversations"), headers=bearer(key))
        ).status_code == 200
    with _statements(world.runtime) as seen:
        for _ in range(20):
            for key in (project_key, user_key):
                response = await client.get(_url(world, "/conversations"), headers=bearer(key))
                assert response.status_code == 200
    auth_tables = ("api_keys", "project_members", "org_members", "custom_roles", "sessions")
    # Only the endpoint's own query (conversations) ran; nothing for authentication.
    assert seen, "the endpoint itself should have queried conversations"
    offending = [s for s in seen if any(t in s for t in auth_tables)]
    assert offending == []


async def test_last_used_is_recorded_without_a_write_per_request(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await world.project_key("project:read")
    with _statements(world.runtime) as seen:
        for _ in range(5):
            assert (await client.get(_url(world), headers=bearer(key))).status_code == 200
    assert not [s for s in seen if s.lstrip().upper().startswith("UPDATE")]
    await world.runtime.changes.flush()
    key_id = await _key_id(world, key)
    async with world.runtime.sessions() as db:
        row, _ = await world.runtime.keys.project_key(
            db, Actor.operator(), world.project_id, key_id, Permission.API_KEY_READ
        )
    assert row.last_used_at is not None


async def test_last_used_times_of_many_keys_only_move_forwards(world: World) -> None:
    # One flush writes every key's time in one batch; an older time (a process that flushed
    # late) never moves a key's last use backwards.
    from keyplane.adapters.sql.repositories import touch_last_used

    ids = [await _key_id(world, await world.project_key("project:read")) for _ in range(3)]
    first = datetime(2026, 12, 1, 12, tzinfo=UTC)
    later, earlier = first + timedelta(hours=1), first - timedelta(hours=1)
    async with world.runtime.transaction() as db:
        await touch_last_used(db, [(key_id, first.timestamp()) for key_id in ids])
    async with world.runtime.transaction() as db:
        moves = [later, earlier, first]
        await touch_last_used(db, [(k, m.timestamp()) for k, m in zip(ids, moves, strict=True)])
    async with world.runtime.sessions() as db:
        found = [
            (
                await world.runtime.keys.project_key(
                    db, Actor.operator(), world.project_id, key_id, Permission.API_KEY_READ
                )
            )[0].last_used_at
            for key_id in ids
        ]
    as_utc = [moment if moment.tzinfo else moment.replace(tzinfo=UTC) for moment in found]
    assert as_utc == [later, first, first]


@pytest.mark.parametrize(
    ("project_id", "problem"),
    [
        ("abc", "int_parsing"),
        ("0", "greater_than_equal"),
        ("9223372036854775808", "less_than_equal"),
        ("1" * 30, "less_than_equal"),
        ("1" * 5000, "int_parsing_size"),
        ("%C3%A9", "int_parsing"),
    ],
)
@pytest.mark.parametrize("with_key", [False, True])
async def test_a_malformed_project_id_is_named_once_before_anything_is_authenticated(
    client: httpx.AsyncClient, world: World, project_id: str, problem: str, with_key: bool
) -> None:
    """The guards read the path's project id themselves (declaring it made FastAPI validate
    it twice per request): still a 422 naming it, with or without a key, reported once."""
    headers = bearer(await world.project_key("project:read")) if with_key else {}
    for path in (f"/v1/projects/{project_id}", f"/v1/projects/{project_id}/webhooks"):
        response = await client.get(path, headers=headers)
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["error"] == "validation_error"
        assert [(d["loc"], d["type"]) for d in body["details"]] == [
            (["path", "project_id"], problem)
        ]
        assert "more problems" not in body["message"]


@pytest.mark.parametrize("project_id", ["00{id}", "+{id}", "%20{id}"])
async def test_a_project_id_pydantic_accepts_is_accepted_by_the_guard_too(
    client: httpx.AsyncClient, world: World, project_id: str
) -> None:
    secret = await world.project_key("project:read")
    path = "/v1/projects/" + project_id.format(id=world.project_id)
    response = await client.get(path, headers=bearer(secret))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == world.project_id
