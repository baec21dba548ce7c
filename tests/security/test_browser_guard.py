"""Keys in client-side code (issue 11): a key sent from a web page is refused with an error
that says where keys belong, and raises an alert on the key naming the page's origin; only
test keys marked for browser use work there. CORS preflights are answered so that the page
can read that error."""

from __future__ import annotations

import httpx

from tests.conftest import World, bearer

PAGE = "https://shop.example.com"


def _project(world: World) -> str:
    return f"/v1/projects/{world.project_id}"


async def _alerts(client: httpx.AsyncClient, world: World) -> list[dict[str, object]]:
    admin = await world.user_key("api_key:read")
    response = await client.get(f"{_project(world)}/alerts", headers=bearer(admin))
    assert response.status_code == 200, response.text
    return [a for a in response.json()["data"] if a["kind"] == "browser_use"]


async def test_a_live_key_from_a_web_page_is_refused_and_alerted(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await world.project_key("project:read")
    headers = bearer(key) | {"Origin": PAGE}
    for _ in range(3):
        response = await client.get(_project(world), headers=headers)
        assert response.status_code == 403
        body = response.json()
        assert body["error"] == "secret_key_in_browser"
        assert "belong on servers" in body["message"]
        assert PAGE in body["message"]
        assert key not in response.text
        # Readable by the page, so its developer sees why instead of a CORS failure.
        assert response.headers["access-control-allow-origin"] == PAGE
    [alert] = await _alerts(client, world)  # one per key, origin and hour
    assert f"used from a web page at {PAGE}" in str(alert["message"])
    key_id = (await world.runtime.verifier.verify(f"Bearer {key}")).id
    assert alert["key_id"] == key_id
    # Even a key lacking the permission is refused as exposed, and on other origins too.
    other = await client.get(
        f"{_project(world)}/users", headers=bearer(key) | {"Origin": "http://localhost:5173"}
    )
    assert other.json()["error"] == "secret_key_in_browser"
    assert len(await _alerts(client, world)) == 2
    # The same key from a server works.
    assert (await client.get(_project(world), headers=bearer(key))).status_code == 200


async def test_fetch_metadata_without_origin_is_a_browser_too(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await world.project_key("project:read")
    response = await client.get(
        _project(world),
        headers=bearer(key) | {"Sec-Fetch-Site": "cross-site", "Referer": f"{PAGE}/cart"},
    )
    assert response.status_code == 403
    assert f"{PAGE}/cart" in response.json()["message"]


async def test_nodes_fetch_is_a_server(client: httpx.AsyncClient, world: World) -> None:
    # Node.js's fetch (undici, the JavaScript SDK's transport) sends exactly these headers.
    key = await world.project_key("project:read")
    node = {"Sec-Fetch-Mode": "cors", "Accept-Language": "*", "User-Agent": "node"}
    response = await client.get(_project(world), headers=bearer(key) | node)
    assert response.status_code == 200, response.text
    assert await _alerts(client, world) == []
    browser = node | {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Dest": "empty"}
    assert (await client.get(_project(world), headers=bearer(key) | browser)).status_code == 403


async def test_preflight_is_answered(client: httpx.AsyncClient, world: World) -> None:
    response = await client.options(
        _project(world),
        headers={
            "Origin": PAGE,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == PAGE
    assert "Authorization" in response.headers["access-control-allow-headers"]
    assert "access-control-allow-credentials" not in response.headers


async def test_only_test_keys_marked_for_browser_use_work_from_pages(
    client: httpx.AsyncClient, world: World
) -> None:
    unmarked = await world.project_key("project:read", test=True)
    refused = await client.get(_project(world), headers=bearer(unmarked) | {"Origin": PAGE})
    assert refused.status_code == 403
    assert "sk_test_" in refused.json()["message"]
    marked = await world.project_key("project:read", test=True, allow_browser=True)
    allowed = await client.get(_project(world), headers=bearer(marked) | {"Origin": PAGE})
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["access-control-allow-origin"] == PAGE
    assert "X-RateLimit-Remaining" in allowed.headers["access-control-expose-headers"]

    admin = await world.user_key("api_key:write", "project:read")
    keys = f"{_project(world)}/api-keys"
    live = await client.post(
        keys,
        headers=bearer(admin),
        json={"name": "Widget", "permissions": ["project:read"], "allow_browser": True},
    )
    assert live.status_code == 422
    assert "Only sk_test_ keys" in live.json()["message"]
    test = await client.post(
        keys,
        headers=bearer(admin),
        json={
            "name": "Widget",
            "permissions": ["project:read"],
            "mode": "test",
            "allow_browser": True,
        },
    )
    assert test.status_code == 201, test.text
    assert test.json()["allow_browser"] is True
    live_id = (
        await client.post(
            keys, headers=bearer(admin), json={"name": "CRM", "permissions": ["project:read"]}
        )
    ).json()["id"]
    patched = await client.patch(
        f"{keys}/{live_id}", headers=bearer(admin), json={"allow_browser": True}
    )
    assert patched.status_code == 422
    # Key management from a page is refused the same way.
    from_page = await client.get(keys, headers=bearer(admin) | {"Origin": PAGE})
    assert from_page.json()["error"] == "secret_key_in_browser"
