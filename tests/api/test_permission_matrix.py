"""Every protected endpoint by every grantable permission, for project and user keys.

The endpoints are discovered from every router module in keyplane.api.routers: any route under
/v1/projects/{project_id} (except key management, which has its own actor checks) must need
exactly one permission, and a new endpoint without a sample request below fails this test
instead of going unchecked."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute

from keyplane.api import routers
from keyplane.domain.permissions import PROJECT_KEY_PERMISSIONS, Permission, closure
from keyplane.settings import Settings
from tests.conftest import TEST_SECRET, World, bearer

PROJECT_PREFIX = "/v1/projects/{project_id}"
# Key management: session or user key, checked by the key manager (tests/api/test_key_management).
MANAGEMENT_MODULES = {"api_keys"}


def platform_routers() -> list[APIRouter]:
    found = []
    for module in pkgutil.iter_modules(routers.__path__):
        if module.name in MANAGEMENT_MODULES:
            continue
        router = importlib.import_module(f"{routers.__name__}.{module.name}").router
        if any(
            isinstance(r, APIRoute) and r.path.startswith(PROJECT_PREFIX) for r in router.routes
        ):
            found.append(router)
    return found


PLATFORM_ROUTERS = platform_routers()

# method, path template -> JSON body for a request that succeeds when permitted
SAMPLES: dict[tuple[str, str], dict[str, Any] | None] = {
    ("GET", "/v1/projects/{project_id}"): None,
    ("GET", "/v1/projects/{project_id}/conversations"): None,
    ("POST", "/v1/projects/{project_id}/conversations"): {"user_id": "u1", "message": "Hello"},
    ("GET", "/v1/projects/{project_id}/conversations/{conversation_id}"): None,
    ("GET", "/v1/projects/{project_id}/conversations/{conversation_id}/messages"): None,
    ("PATCH", "/v1/projects/{project_id}/conversations/{conversation_id}"): {
        "status": "resolved",
        "labels": ["Billing"],
    },
    ("POST", "/v1/projects/{project_id}/conversations/{conversation_id}/messages"): {
        "content": "Thanks!"
    },
    ("POST", "/v1/projects/{project_id}/conversations/{conversation_id}/generate"): None,
    ("GET", "/v1/projects/{project_id}/users"): None,
    ("GET", "/v1/projects/{project_id}/users/{external_id}"): None,
    ("PATCH", "/v1/projects/{project_id}/users/{external_id}"): {"first_name": "Ada"},
    ("GET", "/v1/projects/{project_id}/labels"): None,
    ("PUT", "/v1/projects/{project_id}/labels/{name}"): None,
    ("GET", "/v1/projects/{project_id}/topics"): None,
    ("GET", "/v1/projects/{project_id}/snippets"): None,
    ("GET", "/v1/projects/{project_id}/snippets/{snippet_id}"): None,
    ("POST", "/v1/projects/{project_id}/snippets"): {"title": "Refunds", "content": "30 days."},
    ("PATCH", "/v1/projects/{project_id}/snippets/{snippet_id}"): {"title": "Password reset"},
    ("DELETE", "/v1/projects/{project_id}/snippets/{snippet_id}"): None,
    ("GET", "/v1/projects/{project_id}/data-providers"): None,
    ("POST", "/v1/projects/{project_id}/data-providers"): {
        "name": "Docs",
        "type": "urls",
        "config": {"urls": ["http://127.0.0.1:9/docs.html"]},
    },
    ("POST", "/v1/projects/{project_id}/data-providers/{data_provider_id}/sync"): None,
}
# Requests that use their target up: each permitted one gets a fresh snippet.
CONSUMING = {("DELETE", "/v1/projects/{project_id}/snippets/{snippet_id}")}
SUCCESS = (200, 201, 202, 204)


def guarded_routes() -> list[tuple[str, str, Permission]]:
    found = []
    for router in PLATFORM_ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            if not route.path.startswith(PROJECT_PREFIX):
                continue
            guards = [
                d.call.permission  # type: ignore[union-attr]
                for d in route.dependant.dependencies
                if hasattr(d.call, "permission")
            ]
            assert len(guards) == 1, f"{route.path} must need exactly one permission"
            for method in route.methods:
                found.append((method, route.path, guards[0]))
    return found


ROUTES = guarded_routes()


def test_every_endpoint_has_a_sample_request() -> None:
    assert {(m, p) for m, p, _ in ROUTES} == set(SAMPLES)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # One key per permission and kind: more than the default 10 per project.
    return Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
        data_dir=tmp_path,
        max_keys_per_project=100,
        _env_file=None,  # type: ignore[call-arg]
    )


async def _snippet(client: httpx.AsyncClient, world: World, key: str) -> int:
    created = await client.post(
        f"/v1/projects/{world.project_id}/snippets",
        headers=bearer(key),
        json={"title": "Password reset", "content": "Use the reset link on the sign-in page."},
    )
    assert created.status_code == 201, created.text
    snippet_id: int = created.json()["id"]
    return snippet_id


def test_the_platform_api_is_covered() -> None:
    """Discovery finds the routers of DESIGN §6, not just the ones this file imports."""
    paths = {p for _m, p, _r in ROUTES}
    for resource in ("conversations", "users", "labels", "topics", "snippets", "data-providers"):
        assert f"{PROJECT_PREFIX}/{resource}" in paths


async def test_permission_endpoint_matrix(
    client: httpx.AsyncClient, world: World, tmp_path: Path
) -> None:
    seed = await world.project_key("conversation:generate", "knowledge:write")
    base = f"/v1/projects/{world.project_id}"
    created = await client.post(
        f"{base}/conversations",
        headers=bearer(seed),
        json={"user_id": "seed", "message": "How do I reset my password?"},
    )
    provider = await client.post(
        f"{base}/data-providers",
        headers=bearer(seed),
        json={"name": "Docs", "type": "directory", "config": {"path": str(tmp_path)}},
    )
    assert provider.status_code == 201, provider.text
    targets = {
        "project_id": world.project_id,
        "conversation_id": created.json()["id"],
        "external_id": "seed",
        "name": "Billing",
        "snippet_id": await _snippet(client, world, seed),
        "data_provider_id": provider.json()["id"],
    }
    keys: list[tuple[str, Permission, str]] = []
    for permission in sorted(PROJECT_KEY_PERMISSIONS):
        keys.append(("project", permission, await world.project_key(permission)))
        keys.append(("user", permission, await world.user_key(permission)))

    failures = []
    for method, template, required in ROUTES:
        body = SAMPLES[(method, template)]
        for kind, held, secret in keys:
            allowed = required in closure({held})
            if allowed and (method, template) in CONSUMING:
                targets["snippet_id"] = await _snippet(client, world, seed)
            path = template.format(**targets)
            response = await client.request(method, path, headers=bearer(secret), json=body)
            if allowed and response.status_code not in SUCCESS:
                failures.append((kind, held, method, template, response.status_code))
            if not allowed and (
                response.status_code != 403 or response.json().get("required") != str(required)
            ):
                failures.append((kind, held, method, template, response.status_code))
    # A key of another project, holding everything, is refused on every endpoint.
    other = await world.project()
    stranger = await world.project_key(*sorted(PROJECT_KEY_PERMISSIONS), project_id=other)
    for method, template, _required in ROUTES:
        path = template.format(**targets)
        body = SAMPLES[(method, template)]
        response = await client.request(method, path, headers=bearer(stranger), json=body)
        if response.status_code != 403 or response.json()["error"] != "project_mismatch":
            failures.append(("other project", "*", method, template, response.status_code))
    await world.runtime.jobs.wait()  # the syncs started
    assert failures == []
