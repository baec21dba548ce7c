"""Knowledge snippets: create, read, edit, delete, page; validation and modes."""

from __future__ import annotations

import httpx

from tests.conftest import World, bearer


def _snippets(world: World, suffix: str = "") -> str:
    return f"/v1/projects/{world.project_id}/snippets{suffix}"


async def test_crud(client: httpx.AsyncClient, world: World) -> None:
    key = await world.project_key("knowledge:write")
    created = await client.post(
        _snippets(world),
        headers=bearer(key),
        json={"title": "Opening hours", "content": "Mon-Fri 9-17.", "url": "https://ex.com/h"},
    )
    assert created.status_code == 201, created.text
    snippet = created.json()
    assert (snippet["title"], snippet["url"], snippet["data_provider_id"]) == (
        "Opening hours",
        "https://ex.com/h",
        None,
    )
    path = _snippets(world, f"/{snippet['id']}")
    assert (await client.get(path, headers=bearer(key))).json() == snippet
    edited = await client.patch(
        path, headers=bearer(key), json={"content": "Mon-Sat 9-17.", "url": None}
    )
    assert edited.status_code == 200
    assert (edited.json()["title"], edited.json()["content"], edited.json()["url"]) == (
        "Opening hours",
        "Mon-Sat 9-17.",
        None,
    )
    deleted = await client.delete(path, headers=bearer(key))
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert (await client.get(path, headers=bearer(key))).status_code == 404
    assert (await client.delete(path, headers=bearer(key))).status_code == 404


async def test_pages_newest_first(client: httpx.AsyncClient, world: World) -> None:
    key = await world.project_key("knowledge:write")
    made = [
        (
            await client.post(
                _snippets(world), headers=bearer(key), json={"title": f"S{n}", "content": "c"}
            )
        ).json()["id"]
        for n in range(5)
    ]
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(_snippets(world), headers=bearer(key), params=params)).json()
        seen += [s["id"] for s in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made[::-1]


async def test_bad_input_is_422_and_writes_nothing(client: httpx.AsyncClient, world: World) -> None:
    key = await world.project_key("knowledge:write")
    for body in (
        {"title": "", "content": "c"},
        {"title": "t"},
        {"title": "t", "content": "c", "url": "ftp://example.com/x"},
        {"title": "t", "content": "c", "url": "javascript:alert(1)"},
        {"title": "t", "content": "c", "url": "https://user:pw@example.com/"},
        {"title": "t", "content": "c", "tags": ["x"]},
        {"title": "t", "content": "x" * 100_001},
        {"title": ["t"], "content": "c"},
        {"title": "t", "content": "nul \u0000"},
    ):
        response = await client.post(_snippets(world), headers=bearer(key), json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"] == "validation_error"
    raw = await client.post(
        _snippets(world),
        headers={**bearer(key), "Content-Type": "application/json"},
        content=b'{"title": "t", "content": "\xff"}',
    )
    assert raw.status_code == 422
    assert (await client.get(_snippets(world), headers=bearer(key))).json()["data"] == []
    made = await client.post(
        _snippets(world), headers=bearer(key), json={"title": "t", "content": "c"}
    )
    path = _snippets(world, f"/{made.json()['id']}")
    for body in ({"title": None}, {"content": None}, {"title": "ok", "extra": 1}):
        response = await client.patch(path, headers=bearer(key), json=body)
        assert response.status_code == 422, (body, response.text)
    assert (await client.get(path, headers=bearer(key))).json()["title"] == "t"


async def test_modes_and_projects_never_mix(client: httpx.AsyncClient, world: World) -> None:
    live = await world.project_key("knowledge:write")
    test = await world.project_key("knowledge:write", test=True)
    made = await client.post(
        _snippets(world), headers=bearer(live), json={"title": "Live", "content": "c"}
    )
    path = _snippets(world, f"/{made.json()['id']}")
    assert (await client.get(path, headers=bearer(test))).status_code == 404
    assert (await client.patch(path, headers=bearer(test), json={"title": "x"})).status_code == 404
    assert (await client.delete(path, headers=bearer(test))).status_code == 404
    assert (await client.get(_snippets(world), headers=bearer(test))).json()["data"] == []
    other = await world.project()
    theirs = await world.project_key("knowledge:write", project_id=other)
    foreign = await client.post(
        f"/v1/projects/{other}/snippets",
        headers=bearer(theirs),
        json={"title": "T", "content": "c"},
    )
    mine = _snippets(world, f"/{foreign.json()['id']}")
    assert (await client.delete(mine, headers=bearer(live))).status_code == 404
    assert (await client.get(path, headers=bearer(live))).json()["title"] == "Live"
