from __future__ import annotations

import httpx

from tests.conftest import World, bearer


async def test_project_key_reads_its_project(client: httpx.AsyncClient, world: World) -> None:
    key = await world.project_key("project:read")
    response = await client.get(f"/v1/projects/{world.project_id}", headers=bearer(key))
    assert response.status_code == 200
    assert response.json()["id"] == world.project_id
