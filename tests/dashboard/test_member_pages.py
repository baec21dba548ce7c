"""Organization → Members: invitations by email stay pending until accepted; role changes and
removals apply at once (user keys included); forms need the CSRF token."""

from __future__ import annotations

import httpx

from keyplane.services import accounts
from tests.conftest import PASSWORD, World, bearer
from tests.dashboard.test_auth_pages import session_csrf, sign_in


def members_url(world: World, suffix: str = "") -> str:
    return f"/dashboard/orgs/{world.org_id}/members{suffix}"


async def test_invite_accept_change_role_and_remove(
    client: httpx.AsyncClient, world: World
) -> None:
    await sign_in(client, world.email)
    csrf = await session_csrf(client)
    invite = {
        "email": "  Jane@Example.com ",
        "org_role": "o_member",
        "project": str(world.project_id),
        "project_role": "p_member",
        "csrf": csrf,
    }
    assert (
        await client.post(members_url(world, "/invite"), data=invite | {"csrf": "x"})
    ).status_code == 403
    done = await client.post(members_url(world, "/invite"), data=invite)
    assert done.status_code == 303
    page = await client.get(done.headers["location"])
    assert "jane@example.com" in page.text
    assert "pending" in page.text
    assert "stays pending until the person signs in" in page.text
    again = await client.post(members_url(world, "/invite"), data=invite | {"email": world.email})
    assert again.status_code == 409
    assert "already a member" in again.text
    bad = await client.post(members_url(world, "/invite"), data=invite | {"email": "<b>nope"})
    assert bad.status_code == 422
    assert "<b>nope" not in bad.text

    # Jane signs up later and accepts; until then she is no member.
    async with world.runtime.transaction() as db:
        jane = await accounts.create_user(db, "jane@example.com", PASSWORD)
    transport = client._transport
    async with httpx.AsyncClient(transport=transport, base_url="http://keyplane.test") as her:
        await sign_in(her, "jane@example.com")
        listed = await her.get("/dashboard/account/invitations")
        assert "You are invited to" in listed.text
        invitation_id = listed.text.split("/dashboard/account/invitations/")[1].split('"')[0]
        her_csrf = await session_csrf(her)
        accepted = await her.post(
            f"/dashboard/account/invitations/{invitation_id}",
            data={"answer": "accept", "csrf": her_csrf},
        )
        assert accepted.status_code == 303
        # The project is in her switcher now; as p_member she may not see its keys.
        account = await her.get("/dashboard/account/api-keys")
        assert f'<option value="{world.project_id}"' in account.text
        keys = await her.get(f"/dashboard/projects/{world.project_id}/settings/api-keys")
        assert keys.status_code == 403
        assert "api_key:read" in keys.text
    key = await world.user_key("project:read", user_id=jane.id)
    project = f"/v1/projects/{world.project_id}"
    assert (await client.get(project, headers=bearer(key))).status_code == 200

    # Roles change in place; the last owner cannot be demoted.
    role = await client.post(
        members_url(world, f"/{jane.id}/role"), data={"org_role": "o_viewer", "csrf": csrf}
    )
    assert role.status_code == 303
    assert "o_viewer" in (await client.get(members_url(world))).text
    last_owner = await client.post(
        members_url(world, f"/{world.owner_id}/role"), data={"org_role": "o_admin", "csrf": csrf}
    )
    assert last_owner.status_code == 409
    assert "at least one owner" in last_owner.text

    # Removal takes her user key's access with her on the very next request.
    removed = await client.post(members_url(world, f"/{jane.id}/remove"), data={"csrf": csrf})
    assert removed.status_code == 303
    assert "jane@example.com" not in (await client.get(members_url(world))).text
    assert (await client.get(project, headers=bearer(key))).status_code == 403


async def test_members_page_needs_member_permissions(
    client: httpx.AsyncClient, world: World
) -> None:
    async with world.runtime.transaction() as db:
        user = await accounts.create_user(db, "plain@example.com", PASSWORD)
        await accounts.set_org_role(db, world.org_id, user.id, "o_member")
    await sign_in(client, "plain@example.com")
    page = await client.get(members_url(world))
    assert page.status_code == 403
    assert "member:read" in page.text
    csrf = await session_csrf(client)
    refused = await client.post(
        members_url(world, "/invite"),
        data={"email": "x@example.com", "org_role": "o_owner", "csrf": csrf},
    )
    assert refused.status_code == 403
