"""Several real `keyplane serve` processes on one database and one Redis: a change made
through any of them is enforced by every other on its very next request (issue 8)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.conftest import Cli


def test_an_edit_or_revocation_through_one_process_reaches_every_other_at_once(
    cli: Cli,
    cli_env: dict[str, str],
    serve: Any,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = cli.bootstrap()
    project = ids["project_id"]
    admin = cli.json(
        "keys create --user owner@example.com --name admin -p api_key:write -p project:read"
    )["secret"]
    key = cli.create_key(project, "project:read", "conversation:read")["secret"]
    # The change feed polls only once a minute here: what is measured is the Redis path.
    env = cli_env | {"KEYPLANE_REDIS_URL": redis_url, "KEYPLANE_CHANGE_POLL_SECONDS": "60"}
    servers = [serve(env, tmp_path) for _ in range(3)]
    for server in servers:
        server.wait_healthy()

    def call(server: Any, path: str, secret: str, method: str = "GET", **kw: Any) -> httpx.Response:
        return httpx.request(
            method,
            f"{server.url}/v1/projects/{project}{path}",
            headers={"Authorization": f"Bearer {secret}"},
            timeout=10,
            **kw,
        )

    for server in servers:  # every process has the key cached
        assert call(server, "", key).status_code == 200
    key_id = call(servers[0], "/api-keys", admin).json()["data"][0]["id"]

    edited = call(
        servers[0],
        f"/api-keys/{key_id}",
        admin,
        "PATCH",
        json={"permissions": ["conversation:read"]},
    )
    assert edited.status_code == 200, edited.text
    for server in servers[1:]:
        response = call(server, "", key)
        assert response.status_code == 403, (server.url, response.text)
        assert response.json()["required"] == "project:read"
        assert call(server, "/conversations", key).status_code == 200

    assert call(servers[0], f"/api-keys/{key_id}", admin, "DELETE").status_code == 204
    for server in servers[1:]:
        response = call(server, "/conversations", key)
        assert response.status_code == 401, (server.url, response.text)
        assert response.json()["error"] == "api_key_revoked"

    # A revocation made with the CLI also reaches running processes at once through Redis.
    other = cli.create_key(project, "project:read")
    for server in servers:
        assert call(server, "", other["secret"]).status_code == 200
    monkeypatch.setenv("KEYPLANE_REDIS_URL", redis_url)  # the CLI publishes to Redis too
    cli.run(f"keys revoke {other['id']}")
    for server in servers:
        assert call(server, "", other["secret"]).json()["error"] == "api_key_revoked"


def test_each_event_reaches_a_webhook_once_whatever_the_number_of_processes(
    cli: Cli, cli_env: dict[str, str], serve: Any, tmp_path: Path
) -> None:
    """Three `keyplane serve` processes, each running a webhook sender over the same outbox:
    every event is delivered to the subscription exactly once (issue 11)."""
    from tests.security.receiver import receiver

    ids = cli.bootstrap()
    project = ids["project_id"]
    key = cli.json(f"keys create --project {project} --name writer -p userpool:update --test")[
        "secret"
    ]
    env = cli_env | {"KEYPLANE_WEBHOOK_POLL_SECONDS": "0.02"}
    servers = [serve(env, tmp_path) for _ in range(3)]
    for server in servers:
        server.wait_healthy()
    with receiver() as hook:
        cli.json(f"webhooks add --project {project} --url {hook.url} --test -e user.updated")
        for n in range(30):
            server = servers[n % len(servers)]
            response = httpx.patch(
                f"{server.url}/v1/projects/{project}/users/u{n}",
                headers={"Authorization": f"Bearer {key}"},
                json={"locale": "en"},
                timeout=10,
            )
            assert response.status_code == 201, response.text
        deadline = time.monotonic() + 20
        while len(hook.requests) < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # any duplicate would arrive by now
    ids_seen = [r.headers["X-Keyplane-Delivery"] for r in hook.requests]
    assert len(ids_seen) == 30
    assert len(set(ids_seen)) == 30
