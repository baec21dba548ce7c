"""Operators can rotate KEYPLANE_SECRET_KEY without breaking a single key (DESIGN §2)."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from keyplane.api.app import create_app
from keyplane.runtime import Runtime
from keyplane.services.keys import reencrypt
from keyplane.settings import Settings
from tests.conftest import TEST_SECRET, World, bearer


async def _status(settings: Settings, secret: str, project_id: int) -> int:
    runtime = await Runtime.start(settings, migrate=False, background=False)
    try:
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get(f"/v1/projects/{project_id}", headers=bearer(secret))
            return response.status_code
    finally:
        await runtime.close()


async def test_keys_survive_a_secret_key_rotation(world: World, settings: Settings) -> None:
    secret = await world.project_key("project:read")
    both = settings.model_copy(
        update={"secret_key": SecretStr("2:a-brand-new-master-secret-value," + TEST_SECRET)}
    )
    only_new = settings.model_copy(
        update={"secret_key": SecretStr("2:a-brand-new-master-secret-value")}
    )
    # With the new version added, old keys still verify through the older pepper.
    assert await _status(both, secret, world.project_id) == 200
    assert await _status(only_new, secret, world.project_id) == 401

    runtime = await Runtime.start(both, migrate=False, background=False)
    try:
        async with runtime.transaction() as db:
            assert await reencrypt(db, runtime.keyring) == 1
        async with runtime.transaction() as db:
            assert await reencrypt(db, runtime.keyring) == 0
    finally:
        await runtime.close()
    # Moved forward, the key no longer needs the old version, and still reveals correctly.
    assert await _status(only_new, secret, world.project_id) == 200
    runtime = await Runtime.start(only_new, migrate=False, background=False)
    try:
        key = await runtime.verifier.verify(f"Bearer {secret}")
        async with runtime.sessions() as db:
            from keyplane.adapters.sql.models import ApiKey

            row = await db.get(ApiKey, key.id)
            assert row is not None
            assert row.secret_version == 2
            assert runtime.keyring.decrypt(row.secret_version, row.secret_sealed, row.id) == secret
    finally:
        await runtime.close()


def test_device_cookies_survive_adding_a_secret_and_die_with_its_removal() -> None:
    from keyplane.adapters.sql.models import User
    from keyplane.services.crypto import Keyring
    from keyplane.services.login_throttle import TrustedDevices

    owner = User(id=7, email="owner@example.com", password_hash="$argon2id$v=19$hash")
    account = (7, owner.password_hash)
    old = TrustedDevices(Keyring.parse("an-old-master-secret-value"))
    cookie = old.issue(owner)
    nonce = cookie.partition(".")[0]
    assert old.subject(" Owner@Example.com", account, cookie) == f"device:{nonce}"

    both = TrustedDevices(Keyring.parse("2:a-brand-new-master-secret,1:an-old-master-secret-value"))
    assert both.subject("owner@example.com", account, cookie) == f"device:{nonce}"
    assert both.issue(owner) != cookie

    only_new = TrustedDevices(Keyring.parse("2:a-brand-new-master-secret"))
    assert only_new.subject("owner@example.com", account, cookie) == "owner@example.com"
    # Bound to the account and its password: another account, or a new password, is not it.
    assert old.subject("owner@example.com", (8, owner.password_hash), cookie) == (
        "owner@example.com"
    )
    assert old.subject("owner@example.com", (7, "$argon2id$v=19$new"), cookie) == (
        "owner@example.com"
    )
