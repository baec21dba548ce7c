"""Unkey v2 compatibility (issue 10): the real `unkey.py` client from PyPI, pointed at a live
`keyplane serve` process by its server URL alone, verifies keyplane keys. Everything is set up
as an operator would: with the `keyplane` CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from unkey.py import Unkey, errors, models

from keyplane.domain.keyformat import Mode, generate
from tests.cli.conftest import (  # noqa: F401  (fixtures)
    OWNER_EMAIL,
    Cli,
    Server,
    _cheap_password_hashing,
    cli,
    cli_env,
    serve,
)


@pytest.fixture
def server(cli: Cli, cli_env: dict[str, str], tmp_path: Path, serve: Callable[..., Server]) -> Any:  # noqa: F811
    made = cli.bootstrap()
    running = serve(cli_env, tmp_path)
    running.wait_healthy()
    return running, made["project_id"]


def _root_key(cli: Cli, *permissions: str) -> str:  # noqa: F811
    flags = " ".join(f"-p {p}" for p in permissions)
    key: str = cli.json(f"keys create --user {OWNER_EMAIL} --name root {flags}")["secret"]
    return key


def test_the_unkey_client_verifies_keyplane_keys(server: Any, cli: Cli) -> None:  # noqa: F811
    running, project = server
    cli.run(f"permissions add documents:read --project {project}")
    cli.run(f"permissions add documents:write --project {project}")
    key = cli.json(
        f"keys create --project {project} --name app -p documents:read -p project:read "
        "--rate-limit 1/min"
    )
    unkey = Unkey(root_key=_root_key(cli, "api_key:read"), server_url=running.url)

    # A valid key, with a permission query in Unkey's own spelling (documents.read).
    valid = unkey.keys.verify_key(key=key["secret"], permissions="documents.read AND project:read")
    assert valid.data.valid is True
    assert valid.data.code == models.Code.VALID
    assert valid.data.key_id == key["id"]
    assert valid.data.keyspace_id == str(project)
    assert valid.data.permissions == ["documents:read", "project:read"]
    assert valid.data.ratelimits is not None
    assert valid.data.ratelimits[0].limit == 1
    assert valid.meta.request_id

    # Missing permission (counted too: the bucket holds 2 requests at once).
    missing = unkey.keys.verify_key(key=key["secret"], permissions="documents.write")
    assert missing.data.valid is False
    assert missing.data.code == models.Code.INSUFFICIENT_PERMISSIONS

    # Rate limited.
    limited = unkey.keys.verify_key(key=key["secret"])
    assert limited.data.valid is False
    assert limited.data.code == models.Code.RATE_LIMITED
    assert limited.data.ratelimits is not None
    assert limited.data.ratelimits[0].exceeded is True
    assert limited.data.ratelimits[0].remaining == 0


def test_revoked_unknown_and_foreign_keys(server: Any, cli: Cli) -> None:  # noqa: F811
    running, project = server
    root = _root_key(cli, "api_key:read", "api_key:write")
    unkey = Unkey(root_key=root, server_url=running.url)
    key = cli.create_key(project, "project:read")
    assert unkey.keys.verify_key(key=key["secret"]).data.valid is True

    # Revoked through the server's API: refused on the very next verification.
    deleted = httpx.delete(
        f"{running.url}/v1/projects/{project}/api-keys/{key['id']}",
        headers={"Authorization": f"Bearer {root}"},
    )
    assert deleted.status_code == 204
    revoked = unkey.keys.verify_key(key=key["secret"])
    assert revoked.data.valid is False
    assert revoked.data.code == models.Code.DISABLED

    unknown = unkey.keys.verify_key(key=generate(Mode.LIVE))
    assert unknown.data.code == models.Code.NOT_FOUND
    assert unknown.data.key_id is None
    assert unkey.keys.verify_key(key="not a key").data.code == models.Code.NOT_FOUND

    # A key of another organization is indistinguishable from no key at all.
    rival = cli.bootstrap(email="rival@example.com")
    foreign = unkey.keys.verify_key(
        key=cli.create_key(rival["project_id"], "project:read")["secret"]
    )
    assert foreign.data.model_dump() == unknown.data.model_dump()

    # Unkey keyspaces are keyplane projects: a key outside the listed ones does not exist.
    fresh = cli.create_key(project, "project:read")["secret"]
    elsewhere = unkey.keys.verify_key(key=fresh, keyspaces=[str(project + 1000)])
    assert elsewhere.data.code == models.Code.NOT_FOUND
    assert unkey.keys.verify_key(key=fresh, keyspaces=[str(project)]).data.valid is True


def test_root_key_problems_raise_unkeys_errors(server: Any, cli: Cli) -> None:  # noqa: F811
    running, project = server
    key = cli.create_key(project, "project:read")["secret"]
    with pytest.raises(errors.UnauthorizedErrorResponse) as unauthorized:
        Unkey(root_key=generate(Mode.LIVE), server_url=running.url).keys.verify_key(key=key)
    assert unauthorized.value.data.error.status == 401
    with pytest.raises(errors.ForbiddenErrorResponse):  # a project key is no root key
        Unkey(root_key=key, server_url=running.url).keys.verify_key(key=key)
    root = Unkey(root_key=_root_key(cli, "api_key:read"), server_url=running.url)
    with pytest.raises(errors.BadRequestErrorResponse) as bad:
        root.keys.verify_key(key=key, permissions="project:read AND (")
    assert "permissions query" in bad.value.data.error.detail
    with pytest.raises(errors.BadRequestErrorResponse) as unknown:
        root.keys.verify_key(key=key, permissions="nothing.registered")
    assert "nothing:registered" in unknown.value.data.error.detail
