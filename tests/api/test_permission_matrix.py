"""Every protected endpoint by every grantable permission, for project and user keys.

The endpoints are discovered from the routers, so a new endpoint without a sample request
below fails this test instead of going unchecked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from keyplane.api.routers import conversations, projects
from keyplane.domain.permissions import PROJECT_KEY_PERMISSIONS, Permission, closure
from keyplane.settings import Settings
from tests.conftest import TEST_SECRET, World, bearer

PLATFORM_ROUTERS = (projects.router, conversations.router)

# method, path template -> JSON body for a request that succeeds when permitted
SAMPLES: dict[tuple[str, str], dict[str, Any] | None] = {
    ("GET", "/v1/projects/{project_id}"): None,
    ("GET", "/v1/projects/{project_id}/conversations"): None,
    ("POST", "/v1/projects/{project_id}/conversations"): {"user_id": "u1", "message": "Hello"},
    ("GET", "/v1/projects/{project_id}/conversations/{conversation_id}"): None,
    ("GET", "/v1/projects/{project_id}/conversations/{conversation_id}/messages"): None,
}


def guarded_routes() -> list[tuple[str, str, Permission]]:
    found = []
    for router in PLATFORM_ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
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


async def test_permission_endpoint_matrix(client: httpx.AsyncClient, world: World) -> None:
    seed = await world.project_key("conversation:generate")
    created = await client.post(
        f"/v1/projects/{world.project_id}/conversations",
        headers=bearer(seed),
        json={"user_id": "seed", "message": "seed"},
    )
    conversation_id = created.json()["id"]
    keys: list[tuple[str, Permission, str]] = []
    for permission in sorted(PROJECT_KEY_PERMISSIONS):
        keys.append(("project", permission, await world.project_key(permission)))
        keys.append(("user", permission, await world.user_key(permission)))

    failures = []
    for method, template, required in ROUTES:
        path = template.format(project_id=world.project_id, conversation_id=conversation_id)
        body = SAMPLES[(method, template)]
        for kind, held, secret in keys:
            response = await client.request(method, path, headers=bearer(secret), json=body)
            allowed = required in closure({held})
            if allowed and response.status_code not in (200, 201):
                failures.append((kind, held, method, template, response.status_code))
            if not allowed and (
                response.status_code != 403 or response.json().get("required") != str(required)
            ):
                failures.append((kind, held, method, template, response.status_code))
    assert failures == []
