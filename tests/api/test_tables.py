"""Tables with typed columns and their rows (DESIGN §6): typed validation naming the column,
cursor pagination, filters, live/test separation, nothing partially written."""

from __future__ import annotations

import httpx

from tests.conftest import World, bearer

COLUMNS = [
    {"name": "sku", "type": "text"},
    {"name": "price", "type": "number"},
    {"name": "in_stock", "type": "boolean"},
    {"name": "since", "type": "date"},
]


async def _table(client: httpx.AsyncClient, world: World, key: str, name: str = "products") -> int:
    made = await client.post(
        f"/v1/projects/{world.project_id}/tables",
        headers=bearer(key),
        json={"name": name, "columns": COLUMNS},
    )
    assert made.status_code == 201, made.text
    assert made.json()["columns"] == COLUMNS
    return int(made.json()["id"])


async def test_rows_round_trip_with_typed_values(client: httpx.AsyncClient, world: World) -> None:
    key = await world.project_key("table:write")
    table = await _table(client, world, key)
    rows = f"/v1/projects/{world.project_id}/tables/{table}/rows"
    made = await client.post(
        rows,
        headers=bearer(key),
        json={"values": {"sku": "A-1", "price": 9.5, "in_stock": True, "since": "2026-01-02"}},
    )
    assert made.status_code == 201
    row = made.json()
    assert row["values"] == {"sku": "A-1", "price": 9.5, "in_stock": True, "since": "2026-01-02"}
    # PATCH changes only the cells given.
    patched = await client.patch(
        f"{rows}/{row['id']}", headers=bearer(key), json={"values": {"price": 12}}
    )
    assert patched.status_code == 200
    assert patched.json()["values"]["price"] == 12
    assert patched.json()["values"]["sku"] == "A-1"
    # A row may leave columns out: they are null.
    sparse = await client.post(rows, headers=bearer(key), json={"values": {"sku": "B"}})
    assert sparse.json()["values"] == {"sku": "B", "price": None, "in_stock": None, "since": None}
    listed = (await client.get(rows, headers=bearer(key))).json()
    assert [r["id"] for r in listed["data"]] == [row["id"], sparse.json()["id"]]
    deleted = await client.delete(f"{rows}/{row['id']}", headers=bearer(key))
    assert deleted.status_code == 204
    again = await client.delete(f"{rows}/{row['id']}", headers=bearer(key))
    assert again.status_code == 404
    assert again.json()["error"] == "not_found"
    tables = await client.get(f"/v1/projects/{world.project_id}/tables", headers=bearer(key))
    assert [t["name"] for t in tables.json()["data"]] == ["products"]


async def test_wrong_types_name_the_column_and_write_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await world.project_key("table:write")
    table = await _table(client, world, key)
    rows = f"/v1/projects/{world.project_id}/tables/{table}/rows"
    cases = {
        "price": {"sku": "ok", "price": "12"},
        "in_stock": {"in_stock": "yes"},
        "since": {"since": "02/01/2026"},
        "sku": {"sku": 5},
        "nope": {"nope": 1},
    }
    for column, values in cases.items():
        response = await client.post(rows, headers=bearer(key), json={"values": values})
        assert response.status_code == 422, (column, response.text)
        body = response.json()
        assert body["error"] == "validation_error"
        assert f"'{column}'" in body["message"]
    # true is not a number, even though Python's bool is an int.
    flag = await client.post(rows, headers=bearer(key), json={"values": {"price": True}})
    assert flag.status_code == 422
    extra = await client.post(rows, headers=bearer(key), json={"values": {}, "id": 3})
    assert extra.status_code == 422
    assert (await client.get(rows, headers=bearer(key))).json()["data"] == []


async def test_table_definitions_are_checked(client: httpx.AsyncClient, world: World) -> None:
    key = await world.project_key("table:write")
    base = f"/v1/projects/{world.project_id}/tables"
    bad_type = await client.post(
        base, headers=bearer(key), json={"name": "t", "columns": [{"name": "a", "type": "blob"}]}
    )
    assert bad_type.status_code == 422
    duplicate = await client.post(
        base,
        headers=bearer(key),
        json={"name": "t", "columns": [{"name": "a", "type": "text"}] * 2},
    )
    assert duplicate.status_code == 422
    assert "'a'" in duplicate.json()["message"]
    await _table(client, world, key, "same")
    clash = await client.post(base, headers=bearer(key), json={"name": "same", "columns": COLUMNS})
    assert clash.status_code == 409
    assert clash.json()["error"] == "conflict"


async def test_pagination_and_filters(client: httpx.AsyncClient, world: World) -> None:
    key = await world.project_key("table:write")
    table = await _table(client, world, key)
    rows = f"/v1/projects/{world.project_id}/tables/{table}/rows"
    made = []
    for number in range(5):
        values = {"sku": f"s{number}", "price": number, "in_stock": number % 2 == 0}
        values["since"] = f"2026-01-0{number + 1}"
        made.append((await client.post(rows, headers=bearer(key), json={"values": values})).json())
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(rows, headers=bearer(key), params=params)).json()
        seen += [r["id"] for r in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [r["id"] for r in made]

    async def matching(text: str) -> list[str]:
        response = await client.get(rows, headers=bearer(key), params={"filter": text})
        assert response.status_code == 200, response.text
        return [r["values"]["sku"] for r in response.json()["data"]]

    assert await matching("sku:s3") == ["s3"]
    assert await matching("price:2") == ["s2"]
    assert await matching("in_stock:true") == ["s0", "s2", "s4"]
    assert await matching("since:2026-01-05") == ["s4"]
    for bad in ("unknown:1", "price:cheap", "in_stock:maybe", "nocolon"):
        response = await client.get(rows, headers=bearer(key), params={"filter": bad})
        assert response.status_code == 422, bad


async def test_modes_and_projects_never_mix(client: httpx.AsyncClient, world: World) -> None:
    live = await world.project_key("table:write")
    test = await world.project_key("table:write", test=True)
    table = await _table(client, world, live)
    base = f"/v1/projects/{world.project_id}/tables"
    assert (await client.get(base, headers=bearer(test))).json()["data"] == []
    # The same name is free in the other mode.
    test_table = await _table(client, world, test)
    assert test_table != table
    for method, path, body in (
        ("GET", f"{base}/{table}/rows", None),
        ("POST", f"{base}/{table}/rows", {"values": {"sku": "x"}}),
    ):
        response = await client.request(method, path, headers=bearer(test), json=body)
        assert response.status_code == 404, (method, path)
    row = (
        await client.post(f"{base}/{table}/rows", headers=bearer(live), json={"values": {}})
    ).json()
    # A row of a live table, addressed through the test table, is not found either.
    crossing = await client.patch(
        f"{base}/{test_table}/rows/{row['id']}", headers=bearer(test), json={"values": {}}
    )
    assert crossing.status_code == 404
    other = await world.project()
    theirs = await world.project_key("table:write", project_id=other)
    response = await client.get(f"{base}/{table}/rows", headers=bearer(theirs))
    assert response.json()["error"] == "project_mismatch"
    elsewhere = await client.get(
        f"/v1/projects/{other}/tables/{table}/rows", headers=bearer(theirs)
    )
    assert elsewhere.status_code == 404


async def test_bad_bodies_are_4xx_and_write_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await world.project_key("table:write")
    table = await _table(client, world, key)
    rows = f"/v1/projects/{world.project_id}/tables/{table}/rows"
    json_headers = {**bearer(key), "Content-Type": "application/json"}
    for raw in (
        b'{"values": {"sku": "caf\xe9"}}',  # Latin-1, not UTF-8
        b'{"values": {"sku": "nul\\u0000"}}',
        b'{"values": {"sku": "\\udb7d half a pair"}}',
        b'{"values": {"\\u0000": 1}}',
        b'{"values": [1, 2]}',
        b'{"values": {"sku": "a"}',  # truncated
    ):
        response = await client.post(rows, headers=json_headers, content=raw)
        assert response.status_code == 422, (raw, response.text)
        assert response.json()["error"] == "validation_error"
    huge = await client.post(rows, headers=bearer(key), json={"values": {"sku": "x" * 2_000_000}})
    assert huge.status_code == 413
    assert huge.json()["error"] == "payload_too_large"
    long_text = await client.post(rows, headers=bearer(key), json={"values": {"sku": "x" * 20_000}})
    assert long_text.status_code == 422
    assert "'sku'" in long_text.json()["message"]
    assert (await client.get(rows, headers=bearer(key))).json()["data"] == []
    unknown = await client.post(
        f"/v1/projects/{world.project_id}/tables",
        headers=bearer(key),
        json={"name": "t2", "columns": [{"name": "a", "type": "text", "width": 3}]},
    )
    assert unknown.status_code == 422
    tables = await client.get(f"/v1/projects/{world.project_id}/tables", headers=bearer(key))
    assert [t["name"] for t in tables.json()["data"]] == ["products"]
