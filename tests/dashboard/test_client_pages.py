"""Organization → Clients, the reseller view (issue 12), and what a client sees: only the
chatbots assigned to them, never another client's project names, ids or keys; plus the
white-label basics on the login and dashboard pages."""

from __future__ import annotations

import re

import httpx

from keyplane.services import accounts
from tests.conftest import PASSWORD, World, bearer
from tests.dashboard.test_auth_pages import session_csrf, sign_in


async def _setup(world: World) -> tuple[int, int, int]:
    """Acme's bot (the world's project), Globex's bot, and Alice (of Acme) as a member."""
    async with world.runtime.transaction() as db:
        project = await accounts.get_project(db, world.project_id)
        project.name = "Acme support bot"
        alice = await accounts.create_user(db, "alice@acme.example", PASSWORD)
        await accounts.set_org_role(db, world.org_id, alice.id, "o_viewer")
    globex = await world.project("Globex sales bot")
    return world.project_id, globex, alice.id


def clients_url(world: World, suffix: str = "") -> str:
    return f"/dashboard/orgs/{world.org_id}/clients{suffix}"


async def test_reseller_assigns_a_client_who_then_sees_only_their_chatbot(
    client: httpx.AsyncClient, world: World
) -> None:
    acme, globex, alice = await _setup(world)
    await sign_in(client, world.email)
    csrf = await session_csrf(client)
    assert (await client.get(clients_url(world))).status_code == 200
    made = await client.post(clients_url(world), data={"user": str(alice), "csrf": csrf})
    assert made.status_code == 303
    assigned = await client.post(
        clients_url(world, f"/{alice}/assign"),
        data={"project": str(acme), "role": "p_owner", "csrf": csrf},
    )
    assert assigned.status_code == 303
    page = await client.get(assigned.headers["location"])
    assert "Project assigned" in page.text
    card = page.text.split(f'id="client-{alice}"')[1]
    assert "alice@acme.example" in page.text
    assert "Acme support bot" in card.split("<h3>Keys</h3>")[0]
    refused = await client.post(
        clients_url(world, f"/{alice}/assign"), data={"project": "999999", "csrf": csrf}
    )
    assert refused.status_code == 404

    # Alice signs in: one project in her switcher, nothing of Globex anywhere.
    transport = client._transport
    async with httpx.AsyncClient(transport=transport, base_url="http://keyplane.test") as her:
        await sign_in(her, "alice@acme.example")
        home = await her.get("/dashboard", follow_redirects=True)
        assert home.status_code == 200
        assert "Acme support bot" in home.text
        assert "Globex" not in home.text
        assert f'value="{globex}"' not in home.text
        for path in (
            f"/dashboard/projects/{globex}/settings/api-keys",
            f"/dashboard/switch?project={globex}",
            f"/dashboard/projects/{globex}/alerts",
        ):
            hidden = await her.get(path)
            assert hidden.status_code == 404, path
            assert "Globex" not in hidden.text
        for org_page in ("/clients", "/members", "/settings"):
            assert (await her.get(f"/dashboard/orgs/{world.org_id}{org_page}")).status_code == 403
        her_csrf = await session_csrf(her)
        # Her role allows managing keys on her chatbot; Globex's is out of reach.
        created = await her.post(
            f"/v1/projects/{acme}/api-keys",
            json={"name": "widget", "permissions": ["project:read"]},
            headers={"X-CSRF-Token": her_csrf},
        )
        assert created.status_code == 201
        project_key = created.json()["secret"]
        other = await her.post(
            f"/v1/projects/{globex}/api-keys",
            json={"name": "sneaky", "permissions": ["project:read"]},
            headers={"X-CSRF-Token": her_csrf},
        )
        assert other.status_code == 404
        assert "Globex" not in other.text
        mine = await her.post(
            "/v1/me/api-keys",
            json={"name": "alice all", "permissions": ["project:read"]},
            headers={"X-CSRF-Token": her_csrf},
        )
        assert mine.status_code == 201
        user_key = mine.json()["secret"]
    assert (await client.get(f"/v1/projects/{acme}", headers=bearer(user_key))).status_code == 200
    denied = await client.get(f"/v1/projects/{globex}", headers=bearer(user_key))
    assert denied.status_code == 403
    assert denied.json()["error"] == "project_mismatch"

    # The reseller view lists her keys with their last use.
    view = await client.get(clients_url(world))
    assert "widget" in view.text
    assert "alice all" in view.text
    assert "just now" in view.text or "never" in view.text

    # Unassigning takes Acme away on the next request.
    gone = await client.post(
        clients_url(world, f"/{alice}/projects/{acme}/unassign"), data={"csrf": csrf}
    )
    assert gone.status_code == 303
    assert (await client.get(f"/v1/projects/{acme}", headers=bearer(user_key))).status_code == 403
    async with httpx.AsyncClient(transport=transport, base_url="http://keyplane.test") as her:
        await sign_in(her, "alice@acme.example")
        assert (await her.get(f"/dashboard/projects/{acme}/settings/api-keys")).status_code == 404

    # One click revokes everything she holds.
    revoked = await client.post(clients_url(world, f"/{alice}/revoke-keys"), data={"csrf": csrf})
    assert revoked.status_code == 303
    after = await client.get(revoked.headers["location"])
    assert "Every key this client held is revoked" in after.text
    for secret in (project_key, user_key):
        response = await client.get(f"/v1/projects/{acme}", headers=bearer(secret))
        assert response.json()["error"] == "api_key_revoked"

    # Made a regular member again, her o_member role applies as before.
    released = await client.post(clients_url(world, f"/{alice}/release"), data={"csrf": csrf})
    assert released.status_code == 303
    assert "No clients yet" in (await client.get(clients_url(world))).text


async def test_clients_page_forms_need_csrf_and_admin_rights(
    client: httpx.AsyncClient, world: World
) -> None:
    _acme, _globex, alice = await _setup(world)
    await sign_in(client, world.email)
    forged = await client.post(clients_url(world), data={"user": str(alice), "csrf": "nope"})
    assert forged.status_code == 403
    csrf = await session_csrf(client)
    myself = await client.post(clients_url(world), data={"user": str(world.owner_id), "csrf": csrf})
    assert myself.status_code == 409
    assert "owner cannot be a client" in myself.text


async def test_white_label_on_login_and_dashboard_pages(
    client: httpx.AsyncClient, world: World
) -> None:
    await sign_in(client, world.email)
    csrf = await session_csrf(client)
    settings = f"/dashboard/orgs/{world.org_id}/settings"
    bad = await client.post(
        settings + "/branding", data={"product_name": "Acme AI", "color": "red", "csrf": csrf}
    )
    assert bad.status_code == 422
    assert "hex colour" in bad.text
    for logo in (
        "javascript:alert(1)",
        "https://a.example;script-src/x.png",
        "https://u@a.example/x",
    ):
        refused = await client.post(settings + "/branding", data={"logo_url": logo, "csrf": csrf})
        assert refused.status_code == 422
        assert "https URL" in refused.text
    saved = await client.post(
        settings + "/branding",
        data={
            "product_name": "Acme AI",
            "logo_url": "https://cdn.acme.example/logo.svg",
            "color": "#AA3300",
            "base_url": "https://api.acme.example/",
            "csrf": csrf,
        },
    )
    assert saved.status_code == 303
    keys = await client.get(f"/dashboard/projects/{world.project_id}/settings/api-keys")
    assert '<span id="product-name">Acme AI</span>' in keys.text
    assert "<title>API Keys · Acme AI</title>" in keys.text
    assert 'src="https://cdn.acme.example/logo.svg"' in keys.text
    assert (
        "img-src 'self' data: https://cdn.acme.example;" in keys.headers["content-security-policy"]
    )
    assert "https://api.acme.example</code>" in keys.text
    assert f"curl https://api.acme.example/v1/projects/{world.project_id}" in keys.text
    css_link = re.search(r'href="(/dashboard/brand/\d+\.css[^"]*)"', keys.text)
    assert css_link
    css = await client.get(css_link.group(1))
    assert "--accent: #aa3300" in css.text
    assert css.headers["content-type"].startswith("text/css")
    # The organization's own sign-in page wears the brand too (signed out).
    client.cookies.clear()
    login = await client.get(f"/dashboard/sso/{world.org_id}")
    assert "Sign in to Acme AI" in login.text
    assert 'src="https://cdn.acme.example/logo.svg"' in login.text
    assert 'name="password"' in login.text  # no SSO configured: passwords it is
    # This browser now comes back to that page's brand (e.g. when its session expires).
    again = await client.get("/dashboard/login")
    assert "Sign in to Acme AI" in again.text
    client.cookies.clear()
    plain = await client.get("/dashboard/login")
    assert '<span id="product-name">keyplane</span>' in plain.text
    unknown = await client.get("/dashboard/sso/999999")
    assert unknown.status_code == 200
    assert "Acme" not in unknown.text
