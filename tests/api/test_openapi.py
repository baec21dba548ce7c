"""Schemathesis against the app's own OpenAPI document (`/openapi.json`): whatever a client
sends to any documented operation, the answer is never a 5xx and conforms to what the schema
declares (status codes, content types, headers and bodies), and invalid input is rejected.

Cases come from schemathesis's Hypothesis strategies, in both positive (schema-valid) and
negative (schema-violating) modes, and go through httpx over ASGI on the conftest `runtime`,
so they run on every storage backend. Three in four carry a user key holding every project and
api_key permission (so they get past authentication; one key per operation, so that no
operation runs out of its rate-limit budget), a quarter no credentials at all. Half of them
aim at things that exist (the world's project, a key, a conversation) instead of random ids,
so that the handlers behind authorization run too.

Operations are grouped so that each backend builds its runtime once per group; each group is
bounded by `max_examples`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from keyplane.api.app import create_app
from keyplane.domain.permissions import PROJECT_PERMISSIONS
from keyplane.runtime import Runtime
from keyplane.services.webhooks import Destinations
from keyplane.settings import Settings
from tests.conftest import TEST_SECRET, World, bearer

_APP = create_app(settings=Settings(secret_key=TEST_SECRET, _env_file=None))  # type: ignore[arg-type, call-arg]
OPENAPI = _APP.openapi()
SCHEMA = schemathesis.openapi.from_dict(OPENAPI)
OPERATIONS: dict[str, APIOperation] = {
    op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())
}
GROUPS = {
    "projects": [
        label for label in OPERATIONS if "/v1/projects/" in label and "/api-keys" not in label
    ],
    "project keys": [
        label for label in OPERATIONS if "/v1/projects/{project_id}/api-keys" in label
    ],
    "user keys": [label for label in OPERATIONS if "/v1/me/api-keys" in label],
    "public and session": [
        label for label in OPERATIONS if "/v1/projects/" not in label and "/v1/me/" not in label
    ],
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EVERYTHING = sorted(PROJECT_PERMISSIONS)


@dataclass
class Targets:
    """Things that exist, for path parameters, and one admin key per operation."""

    world: World
    path: dict[str, Any]
    admin_keys: dict[str, str] = field(default_factory=dict)

    async def admin_key(self, label: str) -> str:
        if label not in self.admin_keys:
            self.admin_keys[label] = await self.world.user_key(*EVERYTHING)
        return self.admin_keys[label]


async def _key_id(world: World, secret: str) -> str:
    return (await world.runtime.verifier.verify(f"Bearer {secret}")).id


@pytest.fixture
async def http(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """Like the conftest `client`, but a server error comes back as the 500 response a real
    client would see (not as the exception), so that schemathesis reports it with the request
    that reproduces it."""
    # Fuzzed webhook URLs are never resolved nor sent to: no traffic leaves the machine.
    await runtime.webhooks.stop()

    async def unresolved(_host: str, _port: int) -> list[str]:
        return []

    runtime.webhooks.destinations = Destinations(resolve=unresolved)
    app = create_app(runtime)
    transport = httpx.ASGITransport(
        app=app, client=("127.0.0.1", 50000), raise_app_exceptions=False
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://keyplane.test") as c:
        yield c


@pytest.fixture
async def targets(http: httpx.AsyncClient, world: World) -> Targets:
    project_key = await world.project_key("project:read", name="fuzz target")
    user_key = await world.user_key("project:read")
    made = Targets(world, {})
    response = await http.post(
        f"/v1/projects/{world.project_id}/conversations",
        headers=bearer(await made.admin_key("setup")),
        json={"user_id": "fuzz-user", "message": "How do I rotate a key?"},
    )
    assert response.status_code == 201, response.text
    admin = bearer(await made.admin_key("setup"))
    base = f"/v1/projects/{world.project_id}"
    snippet = await http.post(
        f"{base}/snippets", headers=admin, json={"title": "Keys", "content": "Rotate keys."}
    )
    provider = await http.post(
        f"{base}/data-providers",
        headers=admin,
        json={
            "name": "Docs",
            "type": "directory",
            "config": {"path": str(world.runtime.settings.data_dir)},
        },
    )
    assert provider.status_code == 201, provider.text
    table = await http.post(
        f"{base}/tables",
        headers=admin,
        json={"name": "fuzz", "columns": [{"name": "sku", "type": "text"}]},
    )
    row = await http.post(
        f"{base}/tables/{table.json()['id']}/rows", headers=admin, json={"values": {"sku": "a"}}
    )
    upload = await http.post(
        f"{base}/files", headers=admin, files={"file": ("a.txt", b"hello", "text/plain")}
    )
    made.path = {
        "project_id": world.project_id,
        "conversation_id": response.json()["id"],
        "snippet_id": snippet.json()["id"],
        "data_provider_id": provider.json()["id"],
        "external_id": "fuzz-user",
        "name": "Billing",
        "table_id": table.json()["id"],
        "row_id": row.json()["id"],
        "file_id": upload.json()["id"],
        "project_key_id": await _key_id(world, project_key),
        "user_key_id": await _key_id(world, user_key),
    }
    return made


def _path_parameters(operation: APIOperation, targets: Targets) -> dict[str, Any]:
    known = dict(targets.path)
    known["key_id"] = known["user_key_id" if "/v1/me/" in operation.path else "project_key_id"]
    return {name: known[name] for name in known if "{" + name + "}" in operation.path}


def _wire(headers: dict[str, Any]) -> dict[str, str | bytes]:
    """Header values as a client puts them on the wire (httpx takes only ASCII text)."""
    wired: dict[str, str | bytes] = {}
    for name, value in headers.items():
        text = str(value)
        wired[name] = text if text.isascii() else text.encode("utf-8")
    return wired


def _part(value: Any) -> Any:
    """What a client would put on the wire for a generated multipart value: bytes as they are,
    text encoded, anything else (schemathesis may draw numbers or objects) as JSON."""
    if isinstance(value, bytes | str):
        return value
    return json.dumps(value).encode()


def _files(files: Any) -> Any:
    if not files:
        return files
    items = files.items() if isinstance(files, dict) else files
    parts = []
    for name, value in items:
        if isinstance(value, tuple):
            value = (value[0], _part(value[1]), *value[2:])
        else:
            value = _part(value)
        parts.append((name, value))
    return parts


async def send(
    client: httpx.AsyncClient, case: Case, auth: dict[str, str]
) -> tuple[httpx.Response, dict[str, Any]]:
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url), headers=auth)
    allowed = {"method", "url", "headers", "params", "cookies", "json", "data", "files"}
    unexpected = set(kwargs) - allowed
    assert not unexpected, unexpected
    # Multipart uploads come as files (and form fields as data); everything else as content.
    multipart = "files" in kwargs
    request = client.build_request(
        kwargs["method"],
        kwargs["url"],
        params=kwargs.get("params") or None,
        headers=_wire(kwargs.get("headers") or {}),
        cookies=kwargs.get("cookies") or None,
        json=kwargs.get("json"),
        content=None if multipart else kwargs.get("data"),
        data=kwargs.get("data") if multipart else None,
        files=_files(kwargs.get("files")),
    )
    request.read()  # a multipart body is a stream; schemathesis reads it when reporting
    return await client.send(request), kwargs


HEALTH = [
    HealthCheck.function_scoped_fixture,
    HealthCheck.too_slow,
    HealthCheck.filter_too_much,
    HealthCheck.data_too_large,
]


async def fuzz_one(
    http: httpx.AsyncClient, targets: Targets, group: str, data: st.DataObject
) -> None:
    label = data.draw(st.sampled_from(GROUPS[group]), label="operation")
    operation = OPERATIONS[label]
    mode = data.draw(st.sampled_from(list(GenerationMode)), label="mode")
    aimed = data.draw(st.booleans(), label="aim at existing things")
    strategy = operation.as_strategy(
        mode, path_parameters=_path_parameters(operation, targets) if aimed else None
    )
    case = data.draw(strategy, label="case")
    authenticated = data.draw(st.integers(0, 3), label="authenticated") > 0  # 3 in 4
    auth = bearer(await targets.admin_key(label)) if authenticated else {}
    response, kwargs = await send(http, case, auth)
    case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)


@pytest.mark.parametrize("group", ["projects", "project keys", "user keys"])
@settings(max_examples=60, deadline=None, suppress_health_check=HEALTH)
@given(data=st.data())
async def test_no_server_errors_and_responses_conform(
    http: httpx.AsyncClient, targets: Targets, group: str, data: st.DataObject
) -> None:
    await fuzz_one(http, targets, group, data)


# Fewer examples: every sign-in attempt costs an argon2id verification, on purpose.
@settings(max_examples=25, deadline=None, suppress_health_check=HEALTH)
@given(data=st.data())
async def test_public_and_session_operations(
    http: httpx.AsyncClient, targets: Targets, data: st.DataObject
) -> None:
    await fuzz_one(http, targets, "public and session", data)


def test_every_operation_is_fuzzed() -> None:
    grouped = [label for labels in GROUPS.values() for label in labels]
    assert sorted(grouped) == sorted(OPERATIONS)
    assert len(OPERATIONS) >= 20


async def test_the_served_schema_is_the_one_fuzzed(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(OPENAPI))


async def test_unicode_digits_in_a_project_id_are_a_422_not_a_500(
    client: httpx.AsyncClient, world: World
) -> None:
    """'²', '¹²³' and '①' are digits to str.isdigit() but not to int(): the key-management
    gate must not turn them into a 500 before the path is validated."""
    admin = await world.user_key(*EVERYTHING)
    calls = [("GET", ""), ("POST", ""), ("GET", "/some_key"), ("DELETE", "/k")]
    for raw, (method, suffix) in itertools.product(
        ["%C2%B2", "%C2%B9%C2%B2%C2%B3", "%E2%91%A0"], calls
    ):
        response = await client.request(
            method,
            f"/v1/projects/{raw}/api-keys{suffix}",
            headers=bearer(admin),
            json={"name": "x", "permissions": []} if method == "POST" else None,
        )
        assert response.status_code == 422, (raw, method, suffix, response.text)
        assert response.json()["error"] == "validation_error"
