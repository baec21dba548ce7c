"""Rate limits through the HTTP API, on both limiter backends (DESIGN §5)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from keyplane.api.app import create_app
from keyplane.domain.keyformat import Mode, generate
from keyplane.domain.ratelimit import burst_capacity
from keyplane.runtime import Runtime
from keyplane.services import accounts
from keyplane.settings import Settings
from tests.conftest import TEST_SECRET, World, bearer
from tests.faults import TcpProxy, port_of


@pytest.fixture
def settings(database_url: str, tmp_path: Path, limiter_backend: str | None) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=limiter_backend,
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
        data_dir=tmp_path,
        change_poll_seconds=0.05,
        _env_file=None,  # type: ignore[call-arg]
    )


def _project(world: World) -> str:
    return f"/v1/projects/{world.project_id}"


async def test_every_authenticated_response_carries_the_headers(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await world.project_key("project:read")
    first = await client.get(_project(world), headers=bearer(key))
    second = await client.get(_project(world), headers=bearer(key))
    denied = await client.get(_project(world) + "/conversations", headers=bearer(key))
    assert denied.status_code == 403
    for response in (first, second, denied):
        assert response.headers["X-RateLimit-Limit"] == "100"
        assert re.fullmatch(r"\d{10}", response.headers["X-RateLimit-Reset"])
        assert response.headers["RateLimit-Policy"] == '"minute";q=100;w=60, "day";q=10000;w=86400'
        assert re.fullmatch(r'"minute";r=\d+;t=\d+', response.headers["RateLimit"])
    # 117 burst tokens: remaining is shown within L, and drops below it after 17 requests.
    assert first.headers["X-RateLimit-Remaining"] == "100"
    for _ in range(17):
        last = await client.get(_project(world), headers=bearer(key))
    assert int(last.headers["X-RateLimit-Remaining"]) < 100
    unauthenticated = await client.get(_project(world))
    assert "X-RateLimit-Limit" not in unauthenticated.headers


async def test_429_has_retry_after_and_the_seeds_body(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await world.project_key("project:read", rate_limit={"per_minute": 1})
    statuses = [
        (await client.get(_project(world), headers=bearer(key))).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429]  # capacity 1 + ceil(1/6) = 2
    response = await client.get(_project(world), headers=bearer(key))
    body = response.json()
    retry = int(response.headers["Retry-After"])
    assert 1 <= retry <= 60
    assert body == {
        "error": "rate_limit_exceeded",
        "message": f"Rate limit exceeded. Please retry after {retry} seconds.",
        "retry_after": retry,
    }
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert response.headers["X-RateLimit-Limit"] == "1"


async def test_daily_quota_says_so(client: httpx.AsyncClient, world: World) -> None:
    async with world.runtime.transaction() as db:
        await accounts.set_plan(db, world.org_id, "enterprise", per_minute=1000, per_day=2)
    key = await world.project_key("project:read")
    for _ in range(2):
        assert (await client.get(_project(world), headers=bearer(key))).status_code == 200
    response = await client.get(_project(world), headers=bearer(key))
    assert response.status_code == 429
    body = response.json()
    assert "Daily quota of 2 requests" in body["message"]
    assert "00:00 UTC" in body["message"]
    assert 1 <= body["retry_after"] <= 86_400


@pytest.mark.parametrize("scope", ["project", "org"])
async def test_shared_budgets(client: httpx.AsyncClient, world: World, scope: str) -> None:
    async with world.runtime.transaction() as db:
        await accounts.set_plan(db, world.org_id, "enterprise", per_minute=3, per_day=1000)
        await accounts.set_limit_scope(db, world.org_id, scope)
    other_project = await world.project()
    first = await world.project_key("project:read")
    second = await world.project_key("project:read")
    elsewhere = await world.project_key("project:read", project_id=other_project)
    # capacity 3 + 1 = 4, shared by the project's keys
    statuses = [
        (await client.get(_project(world), headers=bearer(k))).status_code
        for k in (first, second, first, second, first)
    ]
    assert statuses == [200, 200, 200, 200, 429]
    other = await client.get(f"/v1/projects/{other_project}", headers=bearer(elsewhere))
    assert other.status_code == (429 if scope == "org" else 200)


async def test_overrides_only_lower_limits_below_enterprise(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = await world.user_key("api_key:write", "project:read")
    too_high = await client.post(
        _project(world) + "/api-keys",
        headers=bearer(admin),
        json={"name": "x", "permissions": [], "rate_limit": {"per_minute": 1000}},
    )
    assert too_high.status_code == 422
    assert "only lower" in too_high.json()["message"]
    zero = await client.post(
        _project(world) + "/api-keys",
        headers=bearer(admin),
        json={"name": "x", "permissions": [], "rate_limit": {"per_minute": 0}},
    )
    assert zero.status_code == 422


async def test_failed_lookups_are_throttled_per_address_but_known_keys_are_not(
    client: httpx.AsyncClient, world: World
) -> None:
    valid = await world.project_key("project:read")
    assert (await client.get(_project(world), headers=bearer(valid))).status_code == 200
    statuses = [
        (await client.get(_project(world), headers=bearer(generate(Mode.LIVE)))).status_code
        for _ in range(45)
    ]
    allowance = burst_capacity(world.runtime.settings.auth_failures_per_minute)  # 30 + 5
    assert statuses[:allowance] == [401] * allowance
    assert set(statuses[allowance:]) == {429}
    throttled = await client.get(_project(world), headers=bearer(generate(Mode.LIVE)))
    assert "failed authentication attempts" in throttled.json()["message"], throttled.text
    # A key in use keeps working from the same address, even once dropped from the cache.
    world.runtime.verifier.keys.clear()
    still = await client.get(_project(world), headers=bearer(valid))
    assert still.status_code == 200, still.text


async def test_limiter_failure_modes(settings: Settings, world: World) -> None:
    key = await world.project_key("project:read")
    for mode, status in (("open", 200), ("closed", 503)):
        broken = settings.model_copy(
            update={"redis_url": "redis://127.0.0.1:1/0", "rate_limit_failure": mode}
        )
        runtime = await Runtime.start(broken, migrate=False, background=False)
        try:
            transport = httpx.ASGITransport(app=create_app(runtime))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                response = await client.get(_project(world), headers=bearer(key))
        finally:
            await runtime.close()
        assert response.status_code == status
        if status == 503:
            assert response.json()["error"] == "rate_limiter_unavailable"


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(port_of(redis_url))
    await proxy.start()
    yield proxy
    if proxy.serving:
        await proxy.stop()


async def test_recovers_from_a_redis_outage_without_restart(
    settings: Settings, world: World, proxy: TcpProxy, redis_url: str
) -> None:
    through_proxy = settings.model_copy(update={"redis_url": proxy.url_for(redis_url)})
    key = await world.project_key("project:read")
    runtime = await Runtime.start(through_proxy, migrate=False, background=False)
    try:
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            before = await client.get(_project(world), headers=bearer(key))
            assert "X-RateLimit-Limit" in before.headers
            await proxy.stop()
            during = await client.get(_project(world), headers=bearer(key))
            assert during.status_code == 200  # fail open: served, without headers
            assert "X-RateLimit-Limit" not in during.headers
            await proxy.start()
            after = await client.get(_project(world), headers=bearer(key))
            assert after.status_code == 200
            assert "X-RateLimit-Limit" in after.headers
    finally:
        await runtime.close()
