"""End users (userpool): upsert by external id with attributes merged, listing, validation."""

from __future__ import annotations

import httpx

from tests.conftest import World, bearer


def _users(world: World, suffix: str = "") -> str:
    return f"/v1/projects/{world.project_id}/users{suffix}"


async def test_the_crm_sync_upsert_merges_attributes(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await world.project_key("userpool:update")
    created = await client.patch(
        _users(world, "/crm_42"),
        headers=bearer(key),
        json={
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.com",
            "external_attributes": {"subscription_tier": "pro", "lifetime_value": 1200},
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["external_id"] == "crm_42"
    updated = await client.patch(
        _users(world, "/crm_42"),
        headers=bearer(key),
        json={
            "locale": "de-DE",
            "external_attributes": {"account_status": "active", "lifetime_value": 1300},
        },
    )
    assert updated.status_code == 200
    user = updated.json()
    assert (user["first_name"], user["email"], user["locale"]) == (
        "Ada",
        "ada@example.com",
        "de-DE",
    )
    # Merged, not replaced; a null removes one attribute.
    assert user["external_attributes"] == {
        "subscription_tier": "pro",
        "lifetime_value": 1300,
        "account_status": "active",
    }
    removed = await client.patch(
        _users(world, "/crm_42"),
        headers=bearer(key),
        json={"email": None, "external_attributes": {"subscription_tier": None}},
    )
    assert removed.json()["email"] is None
    assert removed.json()["external_attributes"] == {
        "lifetime_value": 1300,
        "account_status": "active",
    }
    shown = await client.get(_users(world, "/crm_42"), headers=bearer(key))
    assert shown.json() == removed.json()


async def test_conversation_users_are_the_same_users(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await world.project_key("conversation:generate", "userpool:update")
    await client.post(
        f"/v1/projects/{world.project_id}/conversations",
        headers=bearer(key),
        json={"user_id": "user_123", "message": "hi"},
    )
    patched = await client.patch(
        _users(world, "/user_123"), headers=bearer(key), json={"first_name": "Bo"}
    )
    assert patched.status_code == 200  # it existed: made by the conversation
    assert patched.json()["first_name"] == "Bo"


async def test_list_pages_newest_first(client: httpx.AsyncClient, world: World) -> None:
    key = await world.project_key("userpool:update")
    for number in range(5):
        await client.patch(
            _users(world, f"/u{number}"),
            headers=bearer(key),
            json={"email": f"u{number}@example.com"},
        )
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(_users(world), headers=bearer(key), params=params)).json()
        seen += [u["external_id"] for u in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["u4", "u3", "u2", "u1", "u0"]
    by_email = await client.get(
        _users(world), headers=bearer(key), params={"email": "u3@example.com"}
    )
    assert [u["external_id"] for u in by_email.json()["data"]] == ["u3"]
    missing = await client.get(_users(world, "/nobody"), headers=bearer(key))
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"


async def test_bad_input_is_422_and_writes_nothing(client: httpx.AsyncClient, world: World) -> None:
    key = await world.project_key("userpool:update")
    path = _users(world, "/new_user")
    deep: dict[str, object] = {"leaf": 1}
    for _level in range(10):
        deep = {"level": deep}
    for body in (
        {"email": "not-an-email"},
        {"locale": "english please"},
        {"first_name": 42},
        {"first_name": "Ada", "nickname": "A"},  # unknown field
        {"first_name": "Ada", "external_attributes": ["a", "list"]},
        {"first_name": "Ada", "external_attributes": {"notes": "x" * 17_000}},
        {"first_name": "Ada", "external_attributes": {"bad\u0000key": 1}},
        {"first_name": "Ada", "external_attributes": deep},
        {"first_name": "x" * 201},
    ):
        response = await client.patch(path, headers=bearer(key), json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"] == "validation_error"
    raw = await client.patch(
        path,
        headers={**bearer(key), "Content-Type": "application/json"},
        content=b'{"first_name": "\xc3\x28"}',
    )
    assert raw.status_code == 422
    huge = await client.patch(
        path, headers=bearer(key), json={"external_attributes": {"x": "y" * 2_000_000}}
    )
    assert huge.status_code == 413
    assert (await client.get(path, headers=bearer(key))).status_code == 404
    listed = await client.get(_users(world), headers=bearer(key))
    assert listed.json()["data"] == []


async def test_test_keys_see_test_users_only(client: httpx.AsyncClient, world: World) -> None:
    live = await world.project_key("userpool:update")
    test = await world.project_key("userpool:update", test=True)
    await client.patch(_users(world, "/same_id"), headers=bearer(live), json={"first_name": "L"})
    made = await client.patch(
        _users(world, "/same_id"), headers=bearer(test), json={"first_name": "T"}
    )
    assert made.status_code == 201  # a separate user in test data
    shown_live = await client.get(_users(world, "/same_id"), headers=bearer(live))
    shown_test = await client.get(_users(world, "/same_id"), headers=bearer(test))
    assert (shown_live.json()["first_name"], shown_test.json()["first_name"]) == ("L", "T")
    only_live = await client.patch(_users(world, "/live_only"), headers=bearer(live), json={})
    assert only_live.status_code == 201
    assert (await client.get(_users(world, "/live_only"), headers=bearer(test))).status_code == 404
    test_list = (await client.get(_users(world), headers=bearer(test))).json()["data"]
    assert [u["external_id"] for u in test_list] == ["same_id"]
