"""Batch upserts (issue 11): users, snippets and table rows, up to 1,000 per call, in one
transaction, counted as one request toward the rate limit; per-item results; a failing item
refuses the whole batch naming its index and field; an oversized batch is refused whole."""

from __future__ import annotations

import httpx

from tests.conftest import World, bearer


def _base(world: World) -> str:
    return f"/v1/projects/{world.project_id}"


async def test_a_thousand_users_in_one_call_counted_once(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await world.project_key("userpool:update", rate_limit={"per_minute": 5, "per_day": 100})
    auth = bearer(key)
    first = await client.patch(f"{_base(world)}/users/u0", headers=auth, json={"locale": "de"})
    assert first.status_code == 201
    remaining = int(first.headers["X-RateLimit-Remaining"])
    items = [
        {"external_id": f"u{i}", "email": f"u{i}@example.com", "external_attributes": {"n": i}}
        for i in range(1000)
    ]
    response = await client.post(f"{_base(world)}/users/batch", headers=auth, json={"items": items})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["created"], body["updated"]) == (999, 1)
    assert body["data"][0] == {"index": 0, "status": "updated", "external_id": "u0", "id": None}
    assert body["data"][999]["external_id"] == "u999"
    assert int(response.headers["X-RateLimit-Remaining"]) == remaining - 1
    user = (await client.get(f"{_base(world)}/users/u0", headers=auth)).json()
    assert (user["locale"], user["email"]) == ("de", "u0@example.com")  # merged, as PATCH


async def test_oversized_and_failing_batches_write_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    auth = bearer(await world.project_key("userpool:update"))
    too_many = [{"external_id": f"x{i}"} for i in range(1001)]
    response = await client.post(
        f"{_base(world)}/users/batch", headers=auth, json={"items": too_many}
    )
    assert response.status_code == 422
    assert "at most 1000 items" in response.json()["message"]
    assert "1001" in response.json()["message"]

    items = [{"external_id": "ok1"}, {"external_id": "ok2"}, {"external_id": "b", "email": "no"}]
    response = await client.post(f"{_base(world)}/users/batch", headers=auth, json={"items": items})
    assert response.status_code == 422
    body = response.json()
    assert "item 2, field email" in body["message"]
    assert body["details"][0]["index"] == 2
    assert body["details"][0]["field"] == "email"
    listed = await client.get(f"{_base(world)}/users", headers=auth)
    assert listed.json()["data"] == []  # the valid items were not written either
    empty = await client.post(f"{_base(world)}/users/batch", headers=auth, json={"items": []})
    assert empty.status_code == 422


async def test_snippets_batch_updates_by_id_or_url(client: httpx.AsyncClient, world: World) -> None:
    auth = bearer(await world.project_key("knowledge:write"))
    url = f"{_base(world)}/snippets/batch"
    made = await client.post(
        url,
        headers=auth,
        json={
            "items": [
                {"title": "Refunds", "content": "30 days.", "url": "https://docs.example.com/r"},
                {"title": "Shipping", "content": "2 days."},
            ]
        },
    )
    assert made.status_code == 200, made.text
    assert [r["status"] for r in made.json()["data"]] == ["created", "created"]
    refund_id, shipping_id = (r["id"] for r in made.json()["data"])
    again = await client.post(
        url,
        headers=auth,
        json={
            "items": [
                {"title": "Refunds", "content": "60 days.", "url": "https://docs.example.com/r"},
                {"id": shipping_id, "title": "Shipping", "content": "3 days."},
            ]
        },
    )
    assert [r["status"] for r in again.json()["data"]] == ["updated", "updated"]
    assert again.json()["data"][0]["id"] == refund_id
    shown = await client.get(f"{_base(world)}/snippets/{refund_id}", headers=auth)
    assert shown.json()["content"] == "60 days."
    missing = await client.post(
        url,
        headers=auth,
        json={
            "items": [
                {"title": "New", "content": "x"},
                {"id": 987654, "title": "T", "content": "C"},
            ]
        },
    )
    assert missing.status_code == 422
    assert "item 1, field id" in missing.json()["message"]
    listed = await client.get(f"{_base(world)}/snippets", headers=auth)
    assert len(listed.json()["data"]) == 2  # "New" was rolled back with the batch


async def test_table_rows_batch(client: httpx.AsyncClient, world: World) -> None:
    auth = bearer(await world.project_key("table:write"))
    table = await client.post(
        f"{_base(world)}/tables",
        headers=auth,
        json={
            "name": "stock",
            "columns": [{"name": "sku", "type": "text"}, {"name": "qty", "type": "number"}],
        },
    )
    rows = f"{_base(world)}/tables/{table.json()['id']}/rows"
    made = await client.post(
        f"{rows}/batch",
        headers=auth,
        json={"items": [{"values": {"sku": "A", "qty": 1}}, {"values": {"sku": "B", "qty": 2}}]},
    )
    assert made.status_code == 200, made.text
    first_id = made.json()["data"][0]["id"]
    changed = await client.post(
        f"{rows}/batch",
        headers=auth,
        json={"items": [{"id": first_id, "values": {"qty": 5}}, {"values": {"sku": "C"}}]},
    )
    assert [r["status"] for r in changed.json()["data"]] == ["updated", "created"]
    bad = await client.post(
        f"{rows}/batch",
        headers=auth,
        json={"items": [{"values": {"sku": "D"}}, {"values": {"sku": "E", "qty": "many"}}]},
    )
    assert bad.status_code == 422, bad.text
    assert "item 1, field values.qty" in bad.json()["message"]
    listed = (await client.get(rows, headers=auth)).json()["data"]
    assert sorted(r["values"]["sku"] for r in listed) == ["A", "B", "C"]
    assert next(r for r in listed if r["id"] == first_id)["values"] == {"sku": "A", "qty": 5}
    unknown = await client.post(
        f"{_base(world)}/tables/999999/rows/batch",
        headers=auth,
        json={"items": [{"values": {"sku": "A"}}]},
    )
    assert unknown.status_code == 404
