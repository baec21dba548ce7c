"""Conversations completed: status and labels (PATCH), messages (POST), on both databases."""

from __future__ import annotations

import httpx

from tests.conftest import World, bearer


def _base(world: World) -> str:
    return f"/v1/projects/{world.project_id}"


async def _conversation(client: httpx.AsyncClient, world: World, key: str) -> int:
    made = await client.post(
        f"{_base(world)}/conversations",
        headers=bearer(key),
        json={"user_id": "user_123", "message": "My invoice is wrong"},
    )
    assert made.status_code == 201, made.text
    conversation_id: int = made.json()["id"]
    return conversation_id


async def test_resolve_and_label_a_conversation(client: httpx.AsyncClient, world: World) -> None:
    key = await world.project_key("conversation:generate", "conversation:write", "label:read")
    conversation = await _conversation(client, world, key)
    path = f"{_base(world)}/conversations/{conversation}"
    patched = await client.patch(
        path, headers=bearer(key), json={"status": "resolved", "labels": ["Billing", "urgent"]}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["status"] == "resolved"
    assert patched.json()["labels"] == ["Billing", "urgent"]
    # Labels are the project's, created on first use, one per case-folded name; the first
    # spelling stays.
    again = await client.patch(path, headers=bearer(key), json={"labels": ["BILLING", "billing"]})
    assert again.json()["labels"] == ["Billing"]
    assert again.json()["status"] == "resolved"  # untouched when not sent
    labels = await client.get(f"{_base(world)}/labels", headers=bearer(key))
    assert [label["name"] for label in labels.json()["data"]] == ["Billing", "urgent"]
    listed = await client.get(
        f"{_base(world)}/conversations", headers=bearer(key), params={"status": "resolved"}
    )
    assert [c["id"] for c in listed.json()["data"]] == [conversation]
    reopened = await client.patch(path, headers=bearer(key), json={"status": "unresolved"})
    assert reopened.json()["status"] == "unresolved"


async def test_add_messages(client: httpx.AsyncClient, world: World) -> None:
    key = await world.project_key("conversation:generate", "conversation:write")
    conversation = await _conversation(client, world, key)
    path = f"{_base(world)}/conversations/{conversation}/messages"
    reply = await client.post(
        path, headers=bearer(key), json={"role": "agent", "content": "Let me check."}
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["role"] == "agent"
    follow_up = await client.post(path, headers=bearer(key), json={"content": "Thanks"})
    assert follow_up.json()["role"] == "user"
    messages = (await client.get(path, headers=bearer(key))).json()["data"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "My invoice is wrong"),
        ("agent", "Let me check."),
        ("user", "Thanks"),
    ]


async def test_bad_updates_are_422_and_change_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await world.project_key("conversation:generate", "conversation:write", "label:read")
    conversation = await _conversation(client, world, key)
    path = f"{_base(world)}/conversations/{conversation}"
    for body in (
        {"status": "closed"},
        {"status": "resolved", "labels": "Billing"},  # not a list
        {"status": "resolved", "labels": ["ok", ""]},
        {"status": "resolved", "labels": ["x" * 65]},
        {"status": "resolved", "labels": [f"label {n}" for n in range(51)]},
        {"status": "resolved", "colour": "red"},  # unknown field
        {"status": "resolved", "labels": ["a\u0000b"]},
    ):
        response = await client.patch(path, headers=bearer(key), json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"] == "validation_error"
    raw = await client.patch(
        path,
        headers={**bearer(key), "Content-Type": "application/json"},
        content=b'{"status": "resolved", "labels": ["\xff\xfe"]}',
    )
    assert raw.status_code == 422
    unchanged = (await client.get(path, headers=bearer(key))).json()
    assert (unchanged["status"], unchanged["labels"]) == ("unresolved", [])
    labels = await client.get(f"{_base(world)}/labels", headers=bearer(key))
    assert labels.json()["data"] == []
    empty = await client.post(f"{path}/messages", headers=bearer(key), json={"content": ""})
    assert empty.status_code == 422
    wrong_role = await client.post(
        f"{path}/messages", headers=bearer(key), json={"content": "x", "role": "assistant"}
    )
    assert wrong_role.status_code == 422


async def test_modes_and_projects_stay_apart(client: httpx.AsyncClient, world: World) -> None:
    live = await world.project_key("conversation:generate", "conversation:write", "label:read")
    test = await world.project_key(
        "conversation:generate", "conversation:write", "label:read", test=True
    )
    conversation = await _conversation(client, world, live)
    path = f"{_base(world)}/conversations/{conversation}"
    for response in (
        await client.patch(path, headers=bearer(test), json={"labels": ["Billing"]}),
        await client.post(f"{path}/messages", headers=bearer(test), json={"content": "hi"}),
        await client.post(f"{path}/generate", headers=bearer(test)),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "not_found"
    # The test key's labels are its own: a label made in test data is not in live data.
    test_conversation = await _conversation(client, world, test)
    await client.patch(
        f"{_base(world)}/conversations/{test_conversation}",
        headers=bearer(test),
        json={"labels": ["Sandbox"]},
    )
    live_labels = await client.get(f"{_base(world)}/labels", headers=bearer(live))
    assert live_labels.json()["data"] == []
    test_labels = await client.get(f"{_base(world)}/labels", headers=bearer(test))
    assert [label["name"] for label in test_labels.json()["data"]] == ["Sandbox"]
    # Another project's conversation through this project's id is not found.
    other = await world.project()
    theirs = await world.project_key("conversation:generate", project_id=other)
    made = await client.post(
        f"/v1/projects/{other}/conversations",
        headers=bearer(theirs),
        json={"user_id": "u", "message": "hi"},
    )
    foreign = f"{_base(world)}/conversations/{made.json()['id']}"
    assert (await client.patch(foreign, headers=bearer(live), json={})).status_code == 404
