"""Labels: case-insensitive upsert that keeps the first spelling, listing, modes."""

from __future__ import annotations

import httpx

from tests.conftest import World, bearer


def _labels(world: World, suffix: str = "") -> str:
    return f"/v1/projects/{world.project_id}/labels{suffix}"


async def test_put_creates_once_whatever_the_case(client: httpx.AsyncClient, world: World) -> None:
    key = await world.project_key("label:upsert")
    created = await client.put(_labels(world, "/Billing"), headers=bearer(key))
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "Billing"
    same = await client.put(
        _labels(world, "/billing"), headers=bearer(key), json={"description": "Invoices"}
    )
    assert same.status_code == 200
    assert same.json()["id"] == created.json()["id"]
    assert same.json()["name"] == "Billing"  # the first spelling stays
    assert same.json()["description"] == "Invoices"
    unicode = await client.put(_labels(world, "/Stra%C3%9Fe"), headers=bearer(key))
    assert unicode.status_code == 201
    assert (await client.put(_labels(world, "/STRASSE"), headers=bearer(key))).status_code == 200
    listed = await client.get(_labels(world), headers=bearer(key), params={"limit": 1})
    page = listed.json()
    assert [label["name"] for label in page["data"]] == ["Billing"]
    rest = await client.get(
        _labels(world), headers=bearer(key), params={"cursor": page["next_cursor"]}
    )
    assert [label["name"] for label in rest.json()["data"]] == ["Straße"]
    assert rest.json()["next_cursor"] is None


async def test_bad_label_names_and_bodies_are_422(client: httpx.AsyncClient, world: World) -> None:
    key = await world.project_key("label:upsert")
    for path, body in (
        ("/%20%20", None),
        ("/" + "x" * 65, None),
        ("/tab%09name", None),
        ("/ok", {"description": 5}),
        ("/ok", {"colour": "red"}),
        ("/ok", {"description": "x" * 501}),
    ):
        response = await client.put(_labels(world, path), headers=bearer(key), json=body)
        assert response.status_code == 422, (path, body, response.text)
        assert response.json()["error"] == "validation_error"
    assert (await client.get(_labels(world), headers=bearer(key))).json()["data"] == []


async def test_labels_belong_to_one_mode(client: httpx.AsyncClient, world: World) -> None:
    live = await world.project_key("label:upsert")
    test = await world.project_key("label:upsert", test=True)
    await client.put(_labels(world, "/Billing"), headers=bearer(live))
    in_test = await client.put(_labels(world, "/BILLING"), headers=bearer(test))
    assert in_test.status_code == 201
    assert in_test.json()["name"] == "BILLING"
    live_names = [
        x["name"] for x in (await client.get(_labels(world), headers=bearer(live))).json()["data"]
    ]
    assert live_names == ["Billing"]


async def test_non_utf8_names_in_the_path_are_422(client: httpx.AsyncClient, world: World) -> None:
    key = await world.project_key("label:upsert", "userpool:update")
    for method, path in (
        ("PUT", _labels(world, "/%FF")),
        ("PATCH", f"/v1/projects/{world.project_id}/users/caf%E9"),
        ("GET", f"/v1/projects/{world.project_id}/users/%C3%28"),
    ):
        response = await client.request(method, path, headers=bearer(key), json={})
        assert response.status_code == 422, (path, response.text)
        assert response.json()["error"] == "validation_error"
    assert (await client.get(_labels(world), headers=bearer(key))).json()["data"] == []
    users = await client.get(f"/v1/projects/{world.project_id}/users", headers=bearer(key))
    assert users.json()["data"] == []
