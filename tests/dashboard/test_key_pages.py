"""The API Keys pages as the server renders them: escaping, masking, the permission picker's
offer, the key limit, usage charts; and that the dialogs' calls need the session's CSRF token."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlalchemy import select, update

from keyplane.adapters.sql.models import ApiKey
from keyplane.adapters.sql.repositories import utcnow
from keyplane.services import accounts
from tests.conftest import PASSWORD, World, bearer
from tests.dashboard.test_auth_pages import session_csrf, sign_in

SCRIPT = "<script>alert('x')</script>"


def keys_page(world: World) -> str:
    return f"/dashboard/projects/{world.project_id}/settings/api-keys"


async def test_keys_table_escapes_names_and_never_holds_a_secret(
    client: httpx.AsyncClient, world: World
) -> None:
    secret = await world.project_key("knowledge:write", name=SCRIPT)
    await sign_in(client, world.email)
    page = await client.get(keys_page(world))
    assert page.status_code == 200
    assert SCRIPT not in page.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page.text
    assert secret not in page.text
    assert secret[8:-4] not in page.text
    assert f"••••••••••••{secret[-4:]}" in page.text  # masked, with the hint
    assert re.search(r'class="badge">knowledge:read<', page.text)
    assert re.search(r'class="badge">knowledge:write<', page.text)
    assert re.search(r'class="last-used">never<', page.text)
    assert "1 of 10 keys" in page.text
    assert "no-store" in page.headers["cache-control"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_last_used_and_expiry_read_like_a_person_would_say_them(
    client: httpx.AsyncClient, world: World
) -> None:
    await world.project_key("project:read", expires_at=utcnow() + timedelta(days=30, hours=1))
    async with world.runtime.transaction() as db:
        await db.execute(update(ApiKey).values(last_used_at=utcnow() - timedelta(minutes=3)))
    await sign_in(client, world.email)
    page = await client.get(keys_page(world))
    assert "3 minutes ago" in page.text
    assert "in 30 days" in page.text


async def test_picker_offers_project_permissions_the_viewer_holds_only(
    client: httpx.AsyncClient, world: World
) -> None:
    async with world.runtime.transaction() as db:
        user = await accounts.create_user(db, "keysmith@example.com", PASSWORD)
        await accounts.set_org_role(db, world.org_id, user.id, "o_member")
        await accounts.define_custom_role(
            db, world.org_id, "keysmith", ["api_key:write", "knowledge:read", "project:read"]
        )
        await accounts.add_project_role(db, world.project_id, user.id, "keysmith")
    await sign_in(client, "keysmith@example.com")
    page = (await client.get(keys_page(world))).text
    assert 'value="org:read"' not in page
    assert 'value="member:write"' not in page
    assert 'value="api_key:write"' not in page  # never on project keys
    offered = re.findall(
        r'<div class="perm" >\s*<input type="checkbox" id="[^"]+" name="permissions" '
        r'value="([^"]+)"',
        page,
    )
    assert sorted(offered) == ["knowledge:read", "project:read"]
    assert re.search(r'data-not-held>\s*<input [^>]*value="knowledge:write"[^>]*disabled', page)
    assert 'data-implies="knowledge:read"' in page


async def test_the_key_limit_is_shown_and_the_create_button_disabled_at_it(
    client: httpx.AsyncClient, world: World
) -> None:
    for n in range(10):
        await world.project_key("project:read", name=f"key {n}")
    await sign_in(client, world.email)
    page = (await client.get(keys_page(world))).text
    assert "10 of 10 keys — the limit is reached" in page
    assert re.search(r'id="create-key" disabled', page)
    token = await session_csrf(client)
    response = await client.post(
        f"/v1/projects/{world.project_id}/api-keys",
        json={"name": "eleventh", "permissions": ["project:read"]},
        headers={"X-CSRF-Token": token},
    )
    assert response.status_code == 409
    assert response.json()["error"] == "key_limit_reached"


async def test_dialog_calls_need_the_session_csrf_token(
    client: httpx.AsyncClient, world: World
) -> None:
    await sign_in(client, world.email)
    body = {"name": "CI", "permissions": ["project:read"]}
    url = f"/v1/projects/{world.project_id}/api-keys"
    refused = await client.post(url, json=body)
    assert refused.status_code == 403
    assert refused.json()["error"] == "csrf_failed"
    made = await client.post(url, json=body, headers={"X-CSRF-Token": await session_csrf(client)})
    assert made.status_code == 201


async def test_other_projects_are_not_found_and_errors_are_pages(
    client: httpx.AsyncClient, world: World
) -> None:
    async with world.runtime.transaction() as db:
        org = await accounts.create_org(db, "Someone else")
        theirs = await accounts.create_project(db, org.id, "Not yours")
    await sign_in(client, world.email)
    page = await client.get(f"/dashboard/projects/{theirs.id}/settings/api-keys")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Not yours" not in page.text
    switched = await client.get(f"/dashboard/switch?project={world.project_id}")
    assert switched.headers["location"] == keys_page(world)


async def test_account_keys_page_lists_user_keys(client: httpx.AsyncClient, world: World) -> None:
    secret = await world.user_key("api_key:read", "conversation:read")
    await sign_in(client, world.email)
    page = await client.get("/dashboard/account/api-keys")
    assert page.status_code == 200
    assert 'data-api="/v1/me/api-keys"' in page.text
    assert secret not in page.text
    assert f"••••••••••••{secret[-4:]}" in page.text
    assert 'value="api_key:write"' in page.text  # user keys may manage keys
    assert 'value="org:read"' not in page.text


async def test_usage_page_draws_requests_by_status_and_permissions_used(
    client: httpx.AsyncClient, world: World
) -> None:
    secret = await world.project_key("project:read", "knowledge:read", name=SCRIPT)
    base = f"/v1/projects/{world.project_id}"
    for _ in range(3):
        assert (await client.get(base, headers=bearer(secret))).status_code == 200
    denied = await client.get(f"{base}/conversations", headers=bearer(secret))
    assert denied.status_code == 403
    async with world.runtime.sessions() as db:
        key_id = await db.scalar(select(ApiKey.id))
    await sign_in(client, world.email)
    for group in ("hour", "day"):
        page = await client.get(f"{keys_page(world)}/{key_id}/usage?group_by={group}")
        assert page.status_code == 200
        assert "<svg" in page.text
        assert 'role="img"' in page.text
        assert SCRIPT not in page.text
        assert "4 requests in this period: 3 success (2xx/3xx), 1 client errors (4xx)" in page.text
        assert re.search(r'class="badge">project:read</span></td><td>3<', page.text)
        assert re.search(r'class="badge muted-badge">knowledge:read<', page.text)


async def test_wrong_passwords_to_reveal_count_towards_the_lockout(
    client: httpx.AsyncClient, world: World
) -> None:
    await world.project_key("project:read")
    await sign_in(client, world.email)
    token = await session_csrf(client)
    async with world.runtime.sessions() as db:
        key_id = await db.scalar(select(ApiKey.id))
    url = f"/v1/projects/{world.project_id}/api-keys/{key_id}/reveal"
    headers = {"X-CSRF-Token": token}
    for _ in range(4):
        wrong = await client.post(url, json={"password": "guess"}, headers=headers)
        assert wrong.status_code == 401
    locked = await client.post(url, json={"password": "guess"}, headers=headers)
    assert locked.status_code == 429
    assert locked.json()["error"] == "login_locked"
    # Now even the right password waits, here and at sign-in.
    right = await client.post(url, json={"password": PASSWORD}, headers=headers)
    assert right.status_code == 429
    assert "secret" not in right.json()
    assert (await sign_in(client, world.email)).status_code == 429


async def test_user_key_usage_page(client: httpx.AsyncClient, world: World) -> None:
    secret = await world.user_key("project:read")
    assert (
        await client.get(f"/v1/projects/{world.project_id}", headers=bearer(secret))
    ).status_code == 200
    async with world.runtime.sessions() as db:
        key_id = await db.scalar(select(ApiKey.id))
    await sign_in(client, world.email)
    page = await client.get(f"/dashboard/account/api-keys/{key_id}/usage?group_by=day")
    assert page.status_code == 200
    assert "1 request in this period: 1 success" in page.text
    assert (await client.get("/dashboard/account/api-keys/key_nope/usage")).status_code == 404


async def test_picker_offers_the_projects_own_permissions(
    client: httpx.AsyncClient, world: World
) -> None:
    """Custom permissions (issue 10) are in the picker, so editing a key keeps them."""
    from keyplane.services import custom_permissions
    from keyplane.services.keys import Actor

    async with world.runtime.transaction() as db:
        for name in ("invoices:read", "invoices:write"):
            await custom_permissions.register(
                db, world.runtime.keys, Actor.operator(), world.project_id, name
            )
    await world.project_key("invoices:write")
    await sign_in(client, world.email)
    page = await client.get(keys_page(world))
    assert 'value="invoices:read" data-implies=""' in page.text
    assert 'value="invoices:write" data-implies="invoices:read"' in page.text
    assert re.search(r'class="badge">invoices:write<', page.text)
