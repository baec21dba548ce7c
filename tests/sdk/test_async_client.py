"""The async client against a live server: the same resources, awaited, async iterators."""

from __future__ import annotations

import pytest

from keyplane.sdk import AsyncClient, errors
from tests.sdk.conftest import LiveServer


async def test_async_resources(live_server: LiveServer) -> None:
    world = live_server.world
    key = await world.project_key(
        "conversation:generate", "table:write", "file:write", "deployment:update", "export:read"
    )
    async with AsyncClient(key, world.project_id, live_server.base_url) as client:
        made = [await client.conversations.create(user_id="u", message=f"q{n}") for n in range(3)]
        seen = [c.id async for c in client.conversations.iter(page_size=2)]
        assert seen == [c.id for c in reversed(made)]
        table = await client.tables.create(name="t", columns=[{"name": "on", "type": "boolean"}])
        row = await client.tables.add_row(table.id, {"on": True})
        assert [r.id async for r in client.tables.iter_rows(table.id)] == [row.id]
        uploaded = await client.files.upload(b'{"a": 1}', filename="a.json")
        assert uploaded.content_type == "application/json"
        assert await client.files.download(uploaded.id) == b'{"a": 1}'
        deployment = await client.deployments.create(channel="api", name="Backend")
        assert (await client.deployments.list()).data[0].id == deployment.id
        lines = [line async for line in client.exports.conversations()]
        assert [line["id"] for line in lines] == [c.id for c in made]
        with pytest.raises(errors.InsufficientPermissions) as denied:
            await client.metrics.get(start_date="2026-01-01", end_date="2026-01-02")
        assert denied.value.required == "metric:read"
        with pytest.raises(errors.InsufficientPermissions):
            [line async for line in client.exports.full()]
