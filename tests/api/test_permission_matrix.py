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
# Management endpoints: a session or a user key, checked by the key manager with the actor's
# own permissions (tests/api/test_key_management.py, tests/security/). Webhooks are not among
# them: project keys with webhook:* manage them too (issue 11).
MANAGEMENT_MODULES = {"api_keys", "alerts", "custom_permissions"}


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

P = PROJECT_PREFIX
TABLE = {"name": "t", "columns": [{"name": "sku", "type": "text"}]}
UPLOAD = {"files": {"file": ("notes.txt", b"hello", "text/plain")}}
# A public address literal (no name lookup); subscribed to an event this test never causes,
# and the sender is stopped anyway: nothing is sent.
HOOK = {"url": "https://93.184.215.14/keyplane", "events": ["api_key.rotated"]}

# method, path template -> request arguments (json=, files=, params=) that succeed when
# permitted; None for a bare request.
SAMPLES: dict[tuple[str, str], dict[str, Any] | None] = {
    ("GET", P): None,
    ("GET", f"{P}/conversations"): None,
    ("POST", f"{P}/conversations"): {"json": {"user_id": "u1", "message": "Hello"}},
    ("GET", f"{P}/conversations/{{conversation_id}}"): None,
    ("GET", f"{P}/conversations/{{conversation_id}}/messages"): None,
    ("PATCH", f"{P}/conversations/{{conversation_id}}"): {
        "json": {"status": "resolved", "labels": ["Billing"]}
    },
    ("POST", f"{P}/conversations/{{conversation_id}}/messages"): {"json": {"content": "Thanks!"}},
    ("POST", f"{P}/conversations/{{conversation_id}}/generate"): None,
    ("GET", f"{P}/users"): None,
    ("GET", f"{P}/users/{{external_id}}"): None,
    ("PATCH", f"{P}/users/{{external_id}}"): {"json": {"first_name": "Ada"}},
    ("GET", f"{P}/labels"): None,
    ("PUT", f"{P}/labels/{{name}}"): None,
    ("GET", f"{P}/topics"): None,
    ("GET", f"{P}/snippets"): None,
    ("GET", f"{P}/snippets/{{snippet_id}}"): None,
    ("POST", f"{P}/snippets"): {"json": {"title": "Refunds", "content": "30 days."}},
    ("PATCH", f"{P}/snippets/{{snippet_id}}"): {"json": {"title": "Password reset"}},
    ("DELETE", f"{P}/snippets/{{snippet_id}}"): None,
    ("GET", f"{P}/data-providers"): None,
    ("POST", f"{P}/data-providers"): {
        "json": {
            "name": "Docs",
            "type": "urls",
            "config": {"urls": ["http://127.0.0.1:9/docs.html"]},
        }
    },
    ("GET", f"{P}/data-providers/{{data_provider_id}}"): None,
    ("POST", f"{P}/data-providers/{{data_provider_id}}/sync"): None,
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
    ("POST", f"{P}/users/batch"): {"json": {"items": [{"external_id": "b1", "first_name": "A"}]}},
    ("POST", f"{P}/snippets/batch"): {"json": {"items": [{"title": "T", "content": "C"}]}},
    ("POST", f"{P}/tables/{{table_id}}/rows/batch"): {
        "json": {"items": [{"values": {"sku": "C"}}]}
    },
    ("GET", f"{P}/webhooks"): None,
    ("POST", f"{P}/webhooks"): {"json": HOOK},
    ("GET", f"{P}/webhooks/{{webhook_id}}"): None,
    ("PATCH", f"{P}/webhooks/{{webhook_id}}"): {"json": {"description": "CRM sync"}},
    ("DELETE", f"{P}/webhooks/{{webhook_id}}"): None,
    ("GET", f"{P}/webhooks/{{webhook_id}}/deliveries"): None,
    ("POST", f"{P}/webhooks/{{webhook_id}}/deliveries/{{delivery_id}}/replay"): None,
}
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
                found.append((method, route.path_format, guards[0]))
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


def test_the_platform_api_is_covered() -> None:
    """Discovery finds the routers of DESIGN §6, not just the ones this file imports."""
    paths = {p for _m, p, _r in ROUTES}
    for resource in (
        "conversations",
        "users",
        "labels",
        "topics",
        "snippets",
        "data-providers",
        "tables",
        "files",
        "metrics",
        "deployments",
        "exports/full",
    ):
        assert f"{PROJECT_PREFIX}/{resource}" in paths


class Targets:
    """Ids to fill path templates with; a permitted deletion gets a fresh target first."""

    def __init__(self, client: httpx.AsyncClient, world: World, seed: str) -> None:
        self.client, self.seed = client, bearer(seed)
        self.base = f"/v1/projects/{world.project_id}"
        self.ids: dict[str, Any] = {"project_id": world.project_id}

    async def create(self, path: str, **arguments: Any) -> int:
        made = await self.client.post(f"{self.base}{path}", headers=self.seed, **arguments)
        assert made.status_code == 201, made.text
        return int(made.json()["id"])

    async def fresh(self, template: str) -> dict[str, Any]:
        """A new snippet, row, file or webhook for a DELETE that is about to succeed; returns
        ids to use for this request only."""
        if "{webhook_id}" in template:
            return {"webhook_id": await self.create("/webhooks", json=HOOK)}
        if "{snippet_id}" in template:
            self.ids["snippet_id"] = await self.snippet()
        if "{row_id}" in template:
            self.ids["row_id"] = await self.row()
        if "{file_id}" in template:
            self.ids["file_id"] = await self.create("/files", **UPLOAD)
        return {}

    async def snippet(self) -> int:
        body = {"title": "Password reset", "content": "Use the reset link on the sign-in page."}
        return await self.create("/snippets", json=body)

    async def row(self) -> int:
        return await self.create(
            f"/tables/{self.ids['table_id']}/rows", json={"values": {"sku": "x"}}
        )


async def test_permission_endpoint_matrix(
    client: httpx.AsyncClient, world: World, tmp_path: Path
) -> None:
    await world.runtime.webhooks.stop()  # deliveries are queued below, never sent
    seed = await world.project_key(
        "conversation:generate", "knowledge:write", "table:write", "file:write", "webhook:write"
    )
    targets = Targets(client, world, seed)
    hook = HOOK | {"events": ["conversation.created"]}
    targets.ids["webhook_id"] = await targets.create("/webhooks", json=hook)
    provider = {"name": "Docs", "type": "directory", "config": {"path": str(tmp_path)}}
    targets.ids |= {
        "conversation_id": await targets.create(
            "/conversations", json={"user_id": "seed", "message": "How do I reset my password?"}
        ),
        "external_id": "seed",
        "name": "Billing",
        "snippet_id": await targets.snippet(),
        "data_provider_id": await targets.create("/data-providers", json=provider),
        "table_id": await targets.create("/tables", json=TABLE),
    }
    targets.ids |= {
        "row_id": await targets.row(),
        "file_id": await targets.create("/files", **UPLOAD),
    }
    deliveries = await client.get(
        f"{targets.base}/webhooks/{targets.ids['webhook_id']}/deliveries", headers=targets.seed
    )
    targets.ids["delivery_id"] = deliveries.json()["data"][0]["id"]
    keys: list[tuple[str, Permission, str]] = []
    for permission in sorted(PROJECT_KEY_PERMISSIONS):
        keys.append(("project", permission, await world.project_key(permission)))
        keys.append(("user", permission, await world.user_key(permission)))

    def arguments(method: str, template: str, name: str) -> dict[str, Any]:
        if (method, template) == ("POST", f"{P}/tables"):
            return {"json": TABLE | {"name": name}}  # table names are unique
        return dict(SAMPLES[(method, template)] or {})

    failures = []
    for method, template, required in ROUTES:
        for kind, held, secret in keys:
            allowed = required in closure({held})
            fresh = await targets.fresh(template) if allowed and method == "DELETE" else {}
            path = template.format(**(targets.ids | fresh))
            response = await client.request(
                method,
                path,
                headers=bearer(secret),
                **arguments(method, template, f"t-{kind}-{held}"),
            )
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
        path = template.format(**targets.ids)
        response = await client.request(
            method, path, headers=bearer(stranger), **arguments(method, template, "stranger")
        )
        if response.status_code != 403 or response.json()["error"] != "project_mismatch":
            failures.append(("other project", "*", method, template, response.status_code))
    await world.runtime.jobs.wait()  # the syncs started
    assert failures == []
