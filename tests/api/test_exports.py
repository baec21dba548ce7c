"""Exports (DESIGN §6): JSON lines of conversations with their messages. The plain export
(export:read) never carries end-user PII; the full export (full_export:read) does."""

from __future__ import annotations

import json
from typing import Any

import httpx

from keyplane.services.conversations import end_user
from tests.conftest import World, bearer

PII = {
    "external_id": "crm-4711",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.org",
    "locale": "en-GB",
}
ATTRIBUTES = {"subscription_tier": "platinum-secret-tier", "lifetime_value": 98765}


async def _seed(client: httpx.AsyncClient, world: World, test: bool = False) -> list[int]:
    key = await world.project_key("conversation:generate", test=test)
    base = f"/v1/projects/{world.project_id}/conversations"
    ids = []
    for message in ("How do I reset my password?", "Thanks"):
        made = await client.post(
            base, headers=bearer(key), json={"user_id": PII["external_id"], "message": message}
        )
        ids.append(made.json()["id"])
    from keyplane.domain.keyformat import Mode

    async with world.runtime.transaction() as db:
        user = await end_user(
            db, world.project_id, Mode.TEST if test else Mode.LIVE, PII["external_id"]
        )
        user.first_name, user.last_name = PII["first_name"], PII["last_name"]
        user.email, user.locale = PII["email"], PII["locale"]
        user.external_attributes = ATTRIBUTES
    return ids


async def _export(client: httpx.AsyncClient, path: str, key: str) -> tuple[str, list[Any]]:
    response = await client.get(path, headers=bearer(key))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return response.text, [json.loads(line) for line in response.text.splitlines()]


async def test_conversation_export_has_no_pii(client: httpx.AsyncClient, world: World) -> None:
    ids = await _seed(client, world)
    key = await world.project_key("export:read")
    raw, lines = await _export(
        client, f"/v1/projects/{world.project_id}/exports/conversations", key
    )
    assert [line["id"] for line in lines] == ids
    assert lines[0]["messages"][0]["content"] == "How do I reset my password?"
    assert lines[0]["messages"][0]["role"] == "user"
    # One end user, one stable pseudonym, which is not their external id.
    pseudonyms = {line["user_id"] for line in lines}
    assert len(pseudonyms) == 1
    assert pseudonyms.pop().startswith("u_")
    for value in [*PII.values(), "platinum-secret-tier", "98765", "subscription_tier"]:
        assert str(value) not in raw, value
    assert "user" not in lines[0]
    again = (await _export(client, f"/v1/projects/{world.project_id}/exports/conversations", key))[
        1
    ]
    assert again[0]["user_id"] == lines[0]["user_id"]
    denied = await client.get(f"/v1/projects/{world.project_id}/exports/full", headers=bearer(key))
    assert denied.status_code == 403
    assert denied.json()["required"] == "full_export:read"


async def test_full_export_has_the_profile(client: httpx.AsyncClient, world: World) -> None:
    await _seed(client, world)
    key = await world.project_key("full_export:read")
    _, lines = await _export(client, f"/v1/projects/{world.project_id}/exports/full", key)
    assert lines[0]["user"] == PII | {"external_attributes": ATTRIBUTES}
    # full_export implies export.
    plain = await client.get(
        f"/v1/projects/{world.project_id}/exports/conversations", headers=bearer(key)
    )
    assert plain.status_code == 200


async def test_exports_follow_the_key_mode(client: httpx.AsyncClient, world: World) -> None:
    live_ids = await _seed(client, world)
    test_ids = await _seed(client, world, test=True)
    live = await world.project_key("full_export:read")
    test = await world.project_key("full_export:read", test=True)
    path = f"/v1/projects/{world.project_id}/exports/full"
    assert [line["id"] for line in (await _export(client, path, live))[1]] == live_ids
    test_lines = (await _export(client, path, test))[1]
    assert [line["id"] for line in test_lines] == test_ids
    # The same external id in the other mode is a different end user and pseudonym.
    live_plain = (await _export(client, path.replace("full", "conversations"), live))[1]
    test_plain = (await _export(client, path.replace("full", "conversations"), test))[1]
    assert live_plain[0]["user_id"] != test_plain[0]["user_id"]


async def test_large_exports_stream_in_batches(client: httpx.AsyncClient, world: World) -> None:
    from keyplane.services import exports

    key = await world.project_key("conversation:generate", "export:read")
    base = f"/v1/projects/{world.project_id}"
    original = exports.BATCH
    exports.BATCH = 2
    try:
        made = [
            (
                await client.post(
                    f"{base}/conversations",
                    headers=bearer(key),
                    json={"user_id": "u", "message": "m"},
                )
            ).json()["id"]
            for _ in range(5)
        ]
        _, lines = await _export(client, f"{base}/exports/conversations", key)
    finally:
        exports.BATCH = original
    assert [line["id"] for line in lines] == made
