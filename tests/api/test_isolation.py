"""Nothing crosses projects or modes (DESIGN §1)."""

from __future__ import annotations

import httpx

from tests.conftest import World, bearer


async def test_live_and_test_data_never_mix(client: httpx.AsyncClient, world: World) -> None:
    live = await world.project_key("conversation:generate")
    test = await world.project_key("conversation:generate", "project:read", test=True)
    base = f"/v1/projects/{world.project_id}/conversations"
    made_live = await client.post(
        base, headers=bearer(live), json={"user_id": "u", "message": "live"}
    )
    made_test = await client.post(
        base, headers=bearer(test), json={"user_id": "u", "message": "test"}
    )
    assert made_live.status_code == made_test.status_code == 201
    live_ids = [c["id"] for c in (await client.get(base, headers=bearer(live))).json()["data"]]
    test_ids = [c["id"] for c in (await client.get(base, headers=bearer(test))).json()["data"]]
    assert live_ids == [made_live.json()["id"]]
    assert test_ids == [made_test.json()["id"]]
    crossing = await client.get(f"{base}/{made_live.json()['id']}", headers=bearer(test))
    assert crossing.status_code == 404
    assert crossing.json()["error"] == "not_found"
    messages = await client.get(f"{base}/{made_test.json()['id']}/messages", headers=bearer(live))
    assert messages.status_code == 404
    project = await client.get(f"/v1/projects/{world.project_id}", headers=bearer(test))
    assert project.json()["mode"] == "test"


async def test_projects_never_see_each_other(client: httpx.AsyncClient, world: World) -> None:
    other = await world.project()
    mine = await world.project_key("conversation:generate")
    theirs = await world.project_key("conversation:generate", project_id=other)
    made = await client.post(
        f"/v1/projects/{other}/conversations",
        headers=bearer(theirs),
        json={"user_id": "u", "message": "hi"},
    )
    assert made.status_code == 201
    listed = await client.get(
        f"/v1/projects/{world.project_id}/conversations", headers=bearer(mine)
    )
    assert listed.json()["data"] == []
    # Asking for the other project's conversation through one's own project id finds nothing.
    path = f"/v1/projects/{world.project_id}/conversations/{made.json()['id']}"
    assert (await client.get(path, headers=bearer(mine))).status_code == 404
    # Asking through the other project's id is a mismatch, whatever the resource.
    path = f"/v1/projects/{other}/conversations/{made.json()['id']}"
    assert (await client.get(path, headers=bearer(mine))).json()["error"] == "project_mismatch"


async def test_pagination_walks_every_conversation_once(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await world.project_key("conversation:generate", "conversation:write")
    base = f"/v1/projects/{world.project_id}/conversations"
    made = []
    for number in range(7):
        response = await client.post(
            base, headers=bearer(key), json={"user_id": f"user_{number % 2}", "message": "q"}
        )
        made.append(response.json()["id"])
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(base, headers=bearer(key), params=params)).json()
        seen += [c["id"] for c in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(made, reverse=True)
    only = await client.get(base, headers=bearer(key), params={"user_id": "user_1"})
    assert {c["user_id"] for c in only.json()["data"]} == {"user_1"}
    assert len(only.json()["data"]) == 3
    unresolved = await client.get(base, headers=bearer(key), params={"status": "unresolved"})
    assert len(unresolved.json()["data"]) == 7
    bad = await client.get(base, headers=bearer(key), params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422
    assert bad.json()["error"] == "validation_error"


async def test_text_no_database_can_store_is_a_422(client: httpx.AsyncClient, world: World) -> None:
    """NUL (PostgreSQL refuses it) and unpaired surrogates (not UTF-8) in bodies or query
    strings are the client's error, on every backend."""
    key = await world.project_key("conversation:generate")
    base = f"/v1/projects/{world.project_id}/conversations"
    for body in (
        b'{"user_id": "u\\u0000", "message": "hi"}',
        b'{"user_id": "u", "message": "\\udb7d half a pair"}',
    ):
        response = await client.post(
            base, headers={**bearer(key), "Content-Type": "application/json"}, content=body
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "validation_error"
    query = await client.get(base, headers=bearer(key), params={"user_id": "a\x00b"})
    assert query.status_code == 422
