"""Deployments (DESIGN §6): listed with deployment:read, created with deployment:update."""

from __future__ import annotations

import httpx

from tests.conftest import World, bearer


async def test_create_and_list(client: httpx.AsyncClient, world: World) -> None:
    key = await world.project_key("deployment:update")
    base = f"/v1/projects/{world.project_id}/deployments"
    made = await client.post(
        base,
        headers=bearer(key),
        json={"channel": "slack", "name": "Support", "config": {"team": "T1", "channel": "#help"}},
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["channel"] == "slack"
    assert body["status"] == "active"
    assert body["config"] == {"team": "T1", "channel": "#help"}
    paused = await client.post(
        base, headers=bearer(key), json={"channel": "web", "name": "Site", "status": "paused"}
    )
    assert paused.json()["config"] == {}
    reader = await world.project_key("deployment:read")
    page = (await client.get(base, headers=bearer(reader), params={"limit": 1})).json()
    assert [d["name"] for d in page["data"]] == ["Support"]
    rest = await client.get(base, headers=bearer(reader), params={"cursor": page["next_cursor"]})
    assert [d["name"] for d in rest.json()["data"]] == ["Site"]
    assert rest.json()["next_cursor"] is None
    denied = await client.post(base, headers=bearer(reader), json={"channel": "web", "name": "x"})
    assert denied.status_code == 403
    assert denied.json()["required"] == "deployment:update"


async def test_bad_input_writes_nothing(client: httpx.AsyncClient, world: World) -> None:
    key = await world.project_key("deployment:update")
    base = f"/v1/projects/{world.project_id}/deployments"
    for body in (
        {"channel": "fax", "name": "x"},
        {"channel": "web"},
        {"channel": "web", "name": "x", "colour": "red"},
        {"channel": "web", "name": "x", "config": "not an object"},
        {"channel": "web", "name": "x", "config": {"a": "nul\x00"}},
        {"channel": "web", "name": "x", "status": "deleted"},
    ):
        response = await client.post(base, headers=bearer(key), json=body)
        assert response.status_code == 422, body
        assert response.json()["error"] == "validation_error"
    latin1 = await client.post(
        base,
        headers={**bearer(key), "Content-Type": "application/json"},
        content=b'{"channel": "web", "name": "caf\xe9"}',
    )
    assert latin1.status_code == 422
    assert (await client.get(base, headers=bearer(key))).json()["data"] == []


async def test_modes_never_mix(client: httpx.AsyncClient, world: World) -> None:
    live = await world.project_key("deployment:update")
    test = await world.project_key("deployment:update", test=True)
    base = f"/v1/projects/{world.project_id}/deployments"
    await client.post(base, headers=bearer(live), json={"channel": "api", "name": "Live"})
    await client.post(base, headers=bearer(test), json={"channel": "api", "name": "Test"})
    names = {
        mode: [d["name"] for d in (await client.get(base, headers=bearer(k))).json()["data"]]
        for mode, k in (("live", live), ("test", test))
    }
    assert names == {"live": ["Live"], "test": ["Test"]}
