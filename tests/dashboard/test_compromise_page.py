"""A key's "Compromised?" page: its state and the right way to stop it, the systems that used
it (addresses, user agents), the permissions it used, its alerts and audit events; still
readable after the key is revoked, with the replacement linked or offered."""

from __future__ import annotations

import json
import re
from html import unescape

import httpx
from sqlalchemy import select

from keyplane.adapters.sql.models import ApiKey
from keyplane.services import accounts
from tests.conftest import PASSWORD, World, bearer
from tests.dashboard.test_alert_pages import ESCAPED, SCRIPT, raise_for
from tests.dashboard.test_auth_pages import session_csrf, sign_in


async def key_id_of(world: World, name: str) -> str:
    async with world.runtime.sessions() as db:
        key_id = await db.scalar(select(ApiKey.id).where(ApiKey.name == name))
    assert key_id is not None
    return key_id


def page_url(world: World, key_id: str) -> str:
    return f"/dashboard/projects/{world.project_id}/settings/api-keys/{key_id}/compromised"


async def test_an_active_key_shows_what_it_did_and_how_to_stop_it(
    client: httpx.AsyncClient, world: World
) -> None:
    secret = await world.project_key("project:read", "knowledge:read", name=SCRIPT)
    key_id = await key_id_of(world, SCRIPT)
    base = f"/v1/projects/{world.project_id}"
    agent = {"User-Agent": f"crm-sync {SCRIPT}"}
    for _ in range(2):
        assert (await client.get(base, headers=bearer(secret) | agent)).status_code == 200
    assert (await client.get(f"{base}/conversations", headers=bearer(secret))).status_code == 403
    await raise_for(world, key_id, "h1", message="Requests from a new network.")
    await sign_in(client, world.email)

    page = await client.get(page_url(world, key_id))
    assert page.status_code == 200
    text = page.text
    assert SCRIPT not in text
    assert secret not in text
    assert f'Compromised? <span class="key-name">{ESCAPED}</span>' in text
    assert 'data-state="active"' in text
    assert 'id="replace-form"' in text
    assert 'id="revoke-now"' in text
    assert re.search(r'<option value="0">Immediately', text)  # the first, the default
    # Step 2: the client address and its user agent, escaped.
    clients = text.split('id="clients"')[1].split("</table>")[0]
    assert "<code>127.0.0.1</code>" in clients
    assert f"crm-sync {ESCAPED}" in clients
    # Step 3: what it did: permissions used, alerts, audit events.
    assert re.search(r'class="badge">project:read</span></td><td>2<', text)
    assert "Requests from a new network." in text
    events = text.split('id="audit-events"')[1].split("</table>")[0]
    assert "<code>api_key.created</code>" in events
    assert 'class="badge muted-badge">knowledge:read<' in text  # held, not used
    # The copy body for a later replacement carries settings, never the secret.
    copy = re.search(r'data-copy="([^"]+)"', text)
    assert copy
    body = json.loads(unescape(copy.group(1)))
    assert body == {
        "name": SCRIPT,
        "permissions": ["knowledge:read", "project:read"],
        "mode": "live",
        "ip_allowlist": [],
    }
    assert "no-store" in page.headers["cache-control"]


async def test_after_revoke_and_replace_the_page_links_the_new_key(
    client: httpx.AsyncClient, world: World
) -> None:
    secret = await world.project_key("project:read", name="CRM Sync")
    key_id = await key_id_of(world, "CRM Sync")
    await sign_in(client, world.email)
    token = await session_csrf(client)
    rotated = await client.post(
        f"/v1/projects/{world.project_id}/api-keys/{key_id}/rotate",
        json={"grace_seconds": 0},
        headers={"X-CSRF-Token": token},
    )
    assert rotated.status_code == 201
    new = rotated.json()
    assert (
        await client.get(f"/v1/projects/{world.project_id}", headers=bearer(secret))
    ).status_code == 401
    assert (
        await client.get(f"/v1/projects/{world.project_id}", headers=bearer(new["secret"]))
    ).status_code == 200

    page = await client.get(page_url(world, key_id))
    assert page.status_code == 200  # a revoked key can still be investigated
    assert 'data-state="revoked"' in page.text
    assert 'id="replace-form"' not in page.text
    assert 'id="copy-form"' not in page.text
    assert f'href="{page_url(world, new["id"])}">CRM Sync</a>' in page.text
    assert new["secret"] not in page.text
    events = page.text.split('id="audit-events"')[1].split("</table>")[0]
    assert "<code>api_key.created</code>" in events
    # The keys list no longer shows the old key; the new one has its own page.
    assert (await client.get(page_url(world, new["id"]))).status_code == 200


async def test_a_revoked_key_without_replacement_offers_a_copy(
    client: httpx.AsyncClient, world: World
) -> None:
    await world.project_key("project:read", name="Billing export")
    key_id = await key_id_of(world, "Billing export")
    await sign_in(client, world.email)
    token = await session_csrf(client)
    url = f"/v1/projects/{world.project_id}/api-keys/{key_id}"
    assert (await client.delete(url)).status_code == 403  # no CSRF token
    assert (await client.delete(url, headers={"X-CSRF-Token": token})).status_code == 204
    page = (await client.get(page_url(world, key_id))).text
    assert 'data-state="revoked"' in page
    assert 'id="copy-form"' in page
    events = page.split('id="audit-events"')[1].split("</table>")[0]
    assert "<code>api_key.deleted</code>" in events
    copy = re.search(r'data-copy="([^"]+)"', page)
    assert copy
    made = await client.post(
        f"/v1/projects/{world.project_id}/api-keys",
        json=json.loads(unescape(copy.group(1))),
        headers={"X-CSRF-Token": token},
    )
    assert made.status_code == 201
    assert made.json()["name"] == "Billing export"
    assert made.json()["permissions"] == ["project:read"]


async def test_rotation_with_grace_counts_the_systems_still_on_the_old_key(
    client: httpx.AsyncClient, world: World
) -> None:
    secret = await world.project_key("project:read", name="Mobile app")
    key_id = await key_id_of(world, "Mobile app")
    await sign_in(client, world.email)
    token = await session_csrf(client)
    rotated = await client.post(
        f"/v1/projects/{world.project_id}/api-keys/{key_id}/rotate",
        json={"grace_seconds": 3600},
        headers={"X-CSRF-Token": token},
    )
    assert rotated.status_code == 201
    page = (await client.get(page_url(world, key_id))).text
    assert 'data-state="grace"' in page
    assert "0 systems still use the old key" in page
    assert "Revoking it now is safe." in page
    assert (
        await client.get(f"/v1/projects/{world.project_id}", headers=bearer(secret))
    ).status_code == 200
    page = (await client.get(page_url(world, key_id))).text
    assert "1 system still uses the old key" in page
    assert 'id="revoke-now"' in page
    assert 'id="replace-form"' not in page


async def test_the_page_needs_key_read_and_writing_needs_key_write(
    client: httpx.AsyncClient, world: World
) -> None:
    await world.project_key("project:read", name="Website")
    key_id = await key_id_of(world, "Website")
    async with world.runtime.transaction() as db:
        user = await accounts.create_user(db, "reader@example.com", PASSWORD)
        await accounts.set_org_role(db, world.org_id, user.id, "o_member")
        await accounts.define_custom_role(db, world.org_id, "key reader", ["api_key:read"])
        await accounts.add_project_role(db, world.project_id, user.id, "key reader")
    other = await world.project("Elsewhere")
    await sign_in(client, "reader@example.com")
    page = await client.get(page_url(world, key_id))
    assert page.status_code == 200
    assert "You need <code>api_key:write</code>" in page.text
    assert 'id="replace-form"' not in page.text
    assert 'id="revoke-now"' not in page.text
    elsewhere = f"/dashboard/projects/{other}/settings/api-keys/{key_id}/compromised"
    client.cookies.clear()
    await sign_in(client, world.email)
    assert (await client.get(elsewhere)).status_code == 404  # a key of another project
    assert (await client.get(page_url(world, "key_nope"))).status_code == 404
    assert (await client.get(page_url(world, key_id) + "?days=500")).status_code == 422
