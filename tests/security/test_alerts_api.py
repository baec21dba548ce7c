"""GET /v1/projects/{id}/alerts and POST …/alerts/{alert_id}/acknowledge."""

from __future__ import annotations

import httpx

from keyplane.services.alerts import AlertSpec, raise_alert
from tests.conftest import World, bearer


async def _raise(world: World, window: str, project_id: int | None = None) -> None:
    async with world.runtime.transaction() as db:
        await raise_alert(
            db,
            AlertSpec(
                kind="volume_spike",
                severity="medium",
                message="Key k made 900 requests this hour.",
                window=window,
                org_id=world.org_id,
                project_id=project_id or world.project_id,
                key_id="key_k",
            ),
        )


async def test_list_page_and_acknowledge(client: httpx.AsyncClient, world: World) -> None:
    for hour in range(3):
        await _raise(world, f"h{hour}")
    await _raise(world, "h0")  # the same key, kind and window: not a second alert
    other = await world.project("Elsewhere")
    await _raise(world, "h9", project_id=other)
    reader = await world.user_key("api_key:read")
    writer = await world.user_key("api_key:write")
    base = f"/v1/projects/{world.project_id}/alerts"

    first = await client.get(base + "?limit=2", headers=bearer(reader))
    assert first.status_code == 200
    page = first.json()
    assert len(page["data"]) == 2
    rest = await client.get(f"{base}?limit=2&cursor={page['next_cursor']}", headers=bearer(reader))
    assert len(rest.json()["data"]) == 1
    assert rest.json()["next_cursor"] is None
    newest = page["data"][0]
    assert newest["acknowledged_at"] is None

    refused = await client.post(f"{base}/{newest['id']}/acknowledge", headers=bearer(reader))
    assert refused.status_code == 403
    assert refused.json()["required"] == "api_key:write"
    done = await client.post(f"{base}/{newest['id']}/acknowledge", headers=bearer(writer))
    assert done.status_code == 200
    assert done.json()["acknowledged_at"] is not None
    assert done.json()["acknowledged_by"] == world.owner_id
    again = await client.post(f"{base}/{newest['id']}/acknowledge", headers=bearer(writer))
    assert again.json()["acknowledged_at"] == done.json()["acknowledged_at"]

    open_only = await client.get(base + "?unacknowledged=true", headers=bearer(reader))
    assert len(open_only.json()["data"]) == 2
    elsewhere = await client.get(f"/v1/projects/{other}/alerts", headers=bearer(reader))
    other_id = elsewhere.json()["data"][0]["id"]
    crossed = await client.post(f"{base}/{other_id}/acknowledge", headers=bearer(writer))
    assert crossed.status_code == 404
    assert crossed.json()["error"] == "not_found"
    project_key = await world.project_key("project:read")
    assert (await client.get(base, headers=bearer(project_key))).status_code == 403
    assert (await client.get(base)).status_code == 401
