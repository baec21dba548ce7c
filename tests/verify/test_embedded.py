"""The embeddable verifier (issue 10): the README's ten-line example app, the ASGI middleware,
and remote verification through a live keyplane server."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from keyplane.domain.permissions import Permission
from keyplane.services import custom_permissions
from keyplane.services.keys import Actor
from keyplane.settings import Settings
from keyplane.verify import Identity, Keyplane, KeyplaneMiddleware, Rejected
from tests.conftest import TEST_SECRET, World, bearer
from tests.sdk.conftest import LiveServer, live_server  # noqa: F401  (fixture)

EXAMPLE = Path(__file__).parents[2] / "examples" / "protect_your_api.py"


@pytest.fixture
def settings(database_url: str, tmp_path: Path, redis_url: str) -> Settings:
    # With Redis, as a fleet runs: revocations reach other processes on their next request.
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
        data_dir=tmp_path,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def example(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The example module, imported as its author would run it: configured by environment."""
    monkeypatch.setenv("KEYPLANE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("KEYPLANE_REDIS_URL", str(settings.redis_url))
    monkeypatch.setenv("KEYPLANE_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("KEYPLANE_DATA_DIR", str(settings.data_dir))
    spec = importlib.util.spec_from_file_location("protect_your_api", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.pop("protect_your_api", None)
    spec.loader.exec_module(module)
    return module


async def _invoices_key(world: World, *permissions: str) -> str:
    async with world.runtime.transaction() as db:
        await custom_permissions.register(
            db, world.runtime.keys, Actor.operator(), world.project_id, "invoices:read"
        )
    return await world.project_key(*permissions)


async def test_the_readme_example(example: ModuleType, world: World) -> None:
    assert len(EXAMPLE.read_text().splitlines()) <= 15  # the promised "ten lines" and a docstring
    key = await _invoices_key(world, "invoices:read")
    other = await world.project_key("project:read")
    app = example.app
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 4000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://api.test") as client,
    ):
        ok = await client.get("/invoices", headers=bearer(key))
        assert ok.status_code == 200, ok.text
        key_id = (await world.runtime.verifier.verify(f"Bearer {key}")).id
        assert ok.json() == {"key_id": key_id, "project_id": world.project_id, "mode": "live"}
        assert int(ok.headers["x-ratelimit-limit"]) == 100

        denied = await client.get("/invoices", headers=bearer(other))
        assert denied.status_code == 403
        assert denied.json()["error"] == "insufficient_permissions"
        assert denied.json()["required"] == "invoices:read"
        missing = await client.get("/invoices")
        assert missing.status_code == 401
        assert missing.json()["error"] == "missing_authorization"
        malformed = await client.get("/invoices", headers=bearer(key[:-1]))
        assert malformed.status_code == 401
        assert malformed.json()["error"] == "malformed_api_key"
        assert key[:-1] not in malformed.text

        # Revoked through the keyplane server's runtime: refused on the very next request.
        async with world.runtime.transaction() as db:
            row, _ = await world.runtime.keys.project_key(
                db, Actor.operator(), world.project_id, key_id, Permission.API_KEY_WRITE
            )
            await world.runtime.keys.revoke(db, Actor.operator(), row)
        revoked = await client.get("/invoices", headers=bearer(key))
        assert revoked.status_code == 401
        assert revoked.json()["error"] == "api_key_revoked"


async def _whoami(request: Request) -> JSONResponse:
    identity: Identity = request.state.keyplane
    return JSONResponse({"key_id": identity.key_id, "permissions": sorted(identity.permissions)})


async def _health(_request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


@pytest.fixture
async def middleware_client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    keyplane = Keyplane.local(runtime=world.runtime)
    app = Starlette(routes=[Route("/whoami", _whoami), Route("/health", _health)])
    app.add_middleware(
        KeyplaneMiddleware, keyplane=keyplane, permission="project:read", exclude=["/health"]
    )
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client


async def test_the_middleware(middleware_client: httpx.AsyncClient, world: World) -> None:
    key = await world.project_key("project:read", rate_limit={"per_minute": 1})  # capacity 2
    ok = await middleware_client.get("/whoami", headers=bearer(key))
    assert ok.status_code == 200
    assert ok.json()["permissions"] == ["project:read"]
    assert ok.headers["x-ratelimit-limit"] == "1"
    assert (await middleware_client.get("/health")).status_code == 200  # excluded
    assert (await middleware_client.get("/whoami", headers=bearer(key))).status_code == 200
    limited = await middleware_client.get("/whoami", headers=bearer(key))
    assert limited.status_code == 429
    assert limited.json()["error"] == "rate_limit_exceeded"
    assert int(limited.headers["retry-after"]) >= 1
    lacking = await world.project_key("knowledge:read")
    denied = await middleware_client.get("/whoami", headers=bearer(lacking))
    assert denied.status_code == 403
    assert denied.json()["required"] == "project:read"


async def test_remote_verification(live_server: LiveServer, world: World) -> None:  # noqa: F811
    caller = await world.user_key("api_key:read", "api_key:write")
    key = await world.project_key("project:read")
    remote = Keyplane.remote(live_server.base_url, caller, cache_seconds=0)
    cached = Keyplane.remote(live_server.base_url, caller, cache_seconds=60)
    try:
        identity = await remote.verify(f"Bearer {key}", permission="project:read")
        assert identity.project_id == world.project_id
        assert identity.permissions == {"project:read"}
        assert identity.ratelimit is not None
        assert (await cached.verify(f"Bearer {key}")).key_id == identity.key_id
        for bad in (None, "Basic x", f"Bearer {key}x"):
            with pytest.raises(Rejected) as refused:
                await remote.verify(bad)
            assert refused.value.status_code == 401
        with pytest.raises(Rejected) as lacking:
            await remote.verify(f"Bearer {key}", permission="knowledge:read")
        assert lacking.value.body["error"] == "insufficient_permissions"
        async with httpx.AsyncClient(base_url=live_server.base_url) as http:
            deleted = await http.delete(
                f"/v1/projects/{world.project_id}/api-keys/{identity.key_id}",
                headers=bearer(caller),
            )
            assert deleted.status_code == 204
        # Uncached: refused at once. Cached: the positive answer lives on for its TTL.
        with pytest.raises(Rejected) as revoked:
            await remote.verify(f"Bearer {key}")
        assert revoked.value.body["error"] == "api_key_revoked"
        assert (await cached.verify(f"Bearer {key}")).key_id == identity.key_id
        wrong = Keyplane.remote(live_server.base_url, key)  # a project key as root key
        with pytest.raises(Rejected) as unavailable:
            await wrong.verify(f"Bearer {key}")
        assert unavailable.value.status_code == 503
        await wrong.close()
    finally:
        await remote.close()
        await cached.close()
