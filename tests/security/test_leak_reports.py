"""POST /v1/secret-scanning/github: GitHub's partner-program leak reports, signed with
ECDSA P-256 by a key pair generated here, revoke (or flag) the reported keys and alert."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from keyplane.adapters.sql.models import ApiKey, AuditEvent
from keyplane.domain import keyformat
from keyplane.services import leaks
from keyplane.services.keys import Actor
from keyplane.settings import Settings
from tests.conftest import TEST_SECRET, World, bearer
from tests.security.signing import Signer

ENDPOINT = "/v1/secret-scanning/github"
SIGNER = Signer.generate()
LEAK_URL = "https://github.com/octocat/Hello-World/blob/12345600b9/foo/bar.txt"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
        data_dir=tmp_path,
        change_poll_seconds=0.05,
        github_scanning_keys_file=SIGNER.write_keys_file(tmp_path / "github-keys.json"),
        _env_file=None,  # type: ignore[call-arg]
    )


def _body(*tokens: str) -> bytes:
    return json.dumps(
        [
            {"token": t, "type": "keyplane_api_key", "url": LEAK_URL, "source": "content"}
            for t in tokens
        ]
    ).encode()


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _project(client: httpx.AsyncClient, world: World, key: str) -> httpx.Response:
    return await client.get(f"/v1/projects/{world.project_id}", headers=bearer(key))


async def test_a_reported_key_is_revoked_and_alerted(
    client: httpx.AsyncClient, world: World
) -> None:
    leaked = await world.project_key("project:read", name="CRM Sync")
    assert (await _project(client, world, leaked)).status_code == 200  # cached and in use
    stranger = keyformat.generate(keyformat.Mode.LIVE)  # well formed, never issued
    body = _body(leaked, stranger, "not-a-key-at-all")

    response = await client.post(ENDPOINT, content=body, headers=SIGNER.headers(body))

    assert response.status_code == 200, response.text
    assert response.json() == [
        {"token_hash": _sha(leaked), "token_type": "keyplane_api_key", "label": "true_positive"},
        {"token_hash": _sha(stranger), "token_type": "keyplane_api_key", "label": "false_positive"},
        {
            "token_hash": _sha("not-a-key-at-all"),
            "token_type": "keyplane_api_key",
            "label": "false_positive",
        },
    ]
    assert leaked not in response.text
    after = await _project(client, world, leaked)
    assert after.status_code == 401
    assert after.json()["error"] == "api_key_revoked"

    admin = await world.user_key("api_key:read")
    alerts = await client.get(f"/v1/projects/{world.project_id}/alerts", headers=bearer(admin))
    assert alerts.status_code == 200, alerts.text
    [alert] = alerts.json()["data"]
    assert alert["kind"] == "leaked_key"
    assert alert["severity"] == "critical"
    assert alert["details"]["action"] == "revoked"
    assert alert["details"]["url"] == LEAK_URL
    assert "CRM Sync" in alert["message"]
    assert leaked not in json.dumps(alert)
    async with world.runtime.sessions() as db:
        query = select(AuditEvent.action).where(AuditEvent.key_id == alert["key_id"])
        actions = set(await db.scalars(query))
    assert {"api_key.deleted", "alert.leaked_key"} <= actions

    # GitHub may report the same token again: same answer, no second alert.
    again = await client.post(ENDPOINT, content=body, headers=SIGNER.headers(body))
    assert again.json()[0]["label"] == "true_positive"
    listed = await client.get(f"/v1/projects/{world.project_id}/alerts", headers=bearer(admin))
    assert len(listed.json()["data"]) == 1


async def test_flag_policy_keeps_the_key_working_but_alerts(
    client: httpx.AsyncClient, world: World
) -> None:
    async with world.runtime.transaction() as db:
        await leaks.set_leak_policy(db, world.org_id, "flag")
    leaked = await world.project_key("project:read")
    body = _body(leaked)
    response = await client.post(ENDPOINT, content=body, headers=SIGNER.headers(body))
    assert response.json()[0]["label"] == "true_positive"
    assert (await _project(client, world, leaked)).status_code == 200
    admin = await world.user_key("api_key:read")
    alerts = await client.get(f"/v1/projects/{world.project_id}/alerts", headers=bearer(admin))
    [alert] = alerts.json()["data"]
    assert alert["details"]["action"] == "flagged"


async def test_a_rotated_secret_in_its_grace_period_stops_at_once(
    client: httpx.AsyncClient, world: World
) -> None:
    old = await world.project_key("project:read")
    key = await world.runtime.verifier.verify(f"Bearer {old}")
    async with world.runtime.transaction() as db:
        row = await db.get(ApiKey, key.id)
        assert row is not None
        new = await world.runtime.keys.rotate(db, Actor.operator(), row, 3600)
    assert (await _project(client, world, old)).status_code == 200  # grace period
    body = _body(old)
    await client.post(ENDPOINT, content=body, headers=SIGNER.headers(body))
    assert (await _project(client, world, old)).json()["error"] == "api_key_revoked"
    assert (await _project(client, world, new.secret)).status_code == 200


@pytest.mark.parametrize(
    ("mangle", "status", "code"),
    [
        ("forged", 401, "invalid_signature"),
        ("tampered", 401, "invalid_signature"),
        ("unknown key", 401, "invalid_signature"),
        ("garbage signature", 401, "invalid_signature"),
        ("missing", 400, "missing_signature"),
    ],
)
async def test_bad_signatures_are_refused_and_revoke_nothing(
    client: httpx.AsyncClient, world: World, mangle: str, status: int, code: str
) -> None:
    leaked = await world.project_key("project:read")
    body = _body(leaked)
    headers = SIGNER.headers(body)
    if mangle == "forged":
        headers = Signer.generate().headers(body)  # same identifier, another private key
    elif mangle == "tampered":
        body = _body(leaked, leaked)
    elif mangle == "unknown key":
        headers = Signer.generate("someone-else").headers(body)
    elif mangle == "garbage signature":
        headers["Github-Public-Key-Signature"] = "not base64!"
    else:
        del headers["Github-Public-Key-Signature"]

    response = await client.post(ENDPOINT, content=body, headers=headers)

    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    assert response.json()["message"]
    assert "WWW-Authenticate" not in response.headers
    assert (await _project(client, world, leaked)).status_code == 200


async def test_a_signed_body_that_is_not_a_report_is_a_422(client: httpx.AsyncClient) -> None:
    nul = b'[{"token": "sk_live_x", "type": "t", "url": "https://a\\u0000b"}]'
    for body in (b"{not json", b'{"token": "x"}', b'[{"type": "no token"}]', nul):
        response = await client.post(ENDPOINT, content=body, headers=SIGNER.headers(body))
        assert response.status_code == 422, body
        assert response.json()["error"] == "validation_error"


async def test_without_configured_keys_every_report_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    world.runtime.github_keys.path = None
    body = _body(await world.project_key("project:read"))
    response = await client.post(ENDPOINT, content=body, headers=SIGNER.headers(body))
    assert response.status_code == 401
    assert "KEYPLANE_GITHUB_SCANNING_KEYS_FILE" in response.json()["message"]
