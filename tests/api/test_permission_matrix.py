"""Every protected endpoint by every grantable permission, for project and user keys.

The endpoints are discovered from the routers, so a new endpoint without a sample request
below fails this test instead of going unchecked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from keyplane.api.routers import (
    conversations,
    deployments,
    exports,
    files,
    metrics,
    projects,
    tables,
)
from keyplane.domain.permissions import PROJECT_KEY_PERMISSIONS, Permission, closure
from keyplane.settings import Settings
from tests.conftest import TEST_SECRET, World, bearer

PLATFORM_ROUTERS = (
    projects.router,
    conversations.router,
    tables.router,
    files.router,
    metrics.router,
    deployments.router,
    exports.router,
)

P = "/v1/projects/{project_id}"
TABLE = {"name": "t", "columns": [{"name": "sku", "type": "text"}]}
UPLOAD = {"files": {"file": ("notes.txt", b"hello", "text/plain")}}

# method, path template -> request arguments (json=, files=, params=) that succeed when
# permitted; None for a bare request.
SAMPLES: dict[tuple[str, str], dict[str, Any] | None] = {
    ("GET", P): None,
    ("GET", f"{P}/conversations"): None,
    ("POST", f"{P}/conversations"): {"json": {"user_id": "u1", "message": "Hello"}},
    ("GET", f"{P}/conversations/{{conversation_id}}"): None,
    ("GET", f"{P}/conversations/{{conversation_id}}/messages"): None,
    ("GET", f"{P}/tables"): None,
    ("POST", f"{P}/tables"): {"json": TABLE},  # a fresh name per request, see below
    ("GET", f"{P}/tables/{{table_id}}/rows"): None,
    ("POST", f"{P}/tables/{{table_id}}/rows"): {"json": {"values": {"sku": "A"}}},
    ("PATCH", f"{P}/tables/{{table_id}}/rows/{{row_id}}"): {"json": {"values": {"sku": "B"}}},
    ("DELETE", f"{P}/tables/{{table_id}}/rows/{{row_id}}"): None,
    ("GET", f"{P}/files"): None,
    ("POST", f"{P}/files"): UPLOAD,
    ("GET", f"{P}/files/{{file_id}}"): None,
    ("GET", f"{P}/files/{{file_id}}/content"): None,
    ("DELETE", f"{P}/files/{{file_id}}"): None,
    ("GET", f"{P}/metrics"): {"params": {"start_date": "2026-01-01", "end_date": "2026-01-31"}},
    ("GET", f"{P}/deployments"): None,
    ("POST", f"{P}/deployments"): {"json": {"channel": "web", "name": "Site"}},
    ("GET", f"{P}/exports/conversations"): None,
    ("GET", f"{P}/exports/full"): None,
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
    seed = bearer(await world.project_key("conversation:generate", "table:write", "file:write"))
    base = f"/v1/projects/{world.project_id}"
    created = await client.post(
        f"{base}/conversations", headers=seed, json={"user_id": "seed", "message": "seed"}
    )
    table = (await client.post(f"{base}/tables", headers=seed, json=TABLE)).json()["id"]

    async def new_row() -> int:
        made = await client.post(
            f"{base}/tables/{table}/rows", headers=seed, json={"values": {"sku": "x"}}
        )
        return int(made.json()["id"])

    async def new_file() -> int:
        made = await client.post(f"{base}/files", headers=seed, **UPLOAD)  # type: ignore[arg-type]
        return int(made.json()["id"])

    ids = {
        "project_id": world.project_id,
        "conversation_id": created.json()["id"],
        "table_id": table,
        "row_id": await new_row(),
        "file_id": await new_file(),
    }
    keys: list[tuple[str, Permission, str]] = []
    for permission in sorted(PROJECT_KEY_PERMISSIONS):
        keys.append(("project", permission, await world.project_key(permission)))
        keys.append(("user", permission, await world.user_key(permission)))

    failures = []
    for method, template, required in ROUTES:
        for kind, held, secret in keys:
            allowed = required in closure({held})
            # A permitted deletion needs a fresh target every time.
            if allowed and method == "DELETE":
                ids |= {"row_id": await new_row(), "file_id": await new_file()}
            path = template.format(**ids)
            arguments = dict(SAMPLES[(method, template)] or {})
            if template == f"{P}/tables" and method == "POST":
                arguments = {"json": TABLE | {"name": f"t-{kind}-{held}"}}
            response = await client.request(method, path, headers=bearer(secret), **arguments)
            if allowed and response.status_code not in (200, 201, 204):
                failures.append((kind, held, method, template, response.status_code))
            if not allowed and (
                response.status_code != 403 or response.json().get("required") != str(required)
            ):
                failures.append((kind, held, method, template, response.status_code))
    assert failures == []
