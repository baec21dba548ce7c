"""Project → Alerts: open alerts first with a badge in the navigation, details, escaping, and
acknowledging with the session's CSRF token and api_key:write; a key's alerts on its usage
page."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from keyplane.adapters.sql.models import Alert, ApiKey
from keyplane.services import accounts, alerts
from keyplane.services.alerts import AlertSpec, raise_alert
from tests.conftest import PASSWORD, World
from tests.dashboard.test_auth_pages import session_csrf, sign_in

SCRIPT = "<script>alert('x')</script>"
ESCAPED = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"


async def raise_for(
    world: World, key_id: str | None, window: str, message: str = "Key made 900 requests."
) -> int:
    async with world.runtime.transaction() as db:
        alert = await raise_alert(
            db,
            AlertSpec(
                kind="volume_spike",
                severity="high",
                message=message,
                window=window,
                org_id=world.org_id,
                project_id=world.project_id,
                key_id=key_id,
                details={"requests": 900, "user_agent": SCRIPT},
            ),
        )
        assert alert is not None
        return alert.id


async def only_key_id(world: World) -> str:
    async with world.runtime.sessions() as db:
        key_id = await db.scalar(select(ApiKey.id))
    assert key_id is not None
    return key_id


def alerts_page(world: World) -> str:
    return f"/dashboard/projects/{world.project_id}/alerts"


async def test_open_alerts_come_first_escaped_with_a_badge_in_the_navigation(
    client: httpx.AsyncClient, world: World
) -> None:
    await world.project_key("project:read", name=SCRIPT)
    key_id = await only_key_id(world)
    handled = await raise_for(world, key_id, "h1", message="An older spike.")
    await raise_for(world, key_id, "h2", message=f"Spike from {SCRIPT}")
    await raise_for(world, None, "h3", message="A burst from 203.0.113.9.")
    async with world.runtime.transaction() as db:
        await alerts.acknowledge(db, world.project_id, handled, world.owner_id)
    await sign_in(client, world.email)

    keys = await client.get(f"/dashboard/projects/{world.project_id}/settings/api-keys")
    tab = re.search(r'<a href="[^"]+/alerts" id="alerts-tab"\s*>(.*?)</a>', keys.text, re.S)
    assert tab, "the project navigation links to its alerts"
    assert re.search(r'class="pill alert-pill" aria-hidden="true">2<', tab.group(1))
    assert "(2 not acknowledged)" in tab.group(1)
    assert (
        f'href="/dashboard/projects/{world.project_id}/settings/api-keys/{key_id}/compromised"'
        in keys.text
    )

    page = await client.get(alerts_page(world))
    assert page.status_code == 200
    assert SCRIPT not in page.text
    assert f"Spike from {ESCAPED}" in page.text
    assert ESCAPED in page.text  # the details and the key's name, as text
    opened, rest = page.text.split('id="handled-title"')
    assert "Spike from" in opened
    assert "A burst from 203.0.113.9." in opened
    assert "An older spike." not in opened
    assert "An older spike." in rest
    assert "Not acknowledged (2)" in opened
    assert opened.count(">Acknowledge</button>") == 2
    assert re.search(r"<dt>requests</dt><dd><code>900</code></dd>", page.text)
    assert 'class="severity sev-high">high<' in page.text
    assert "no-store" in page.headers["cache-control"]


async def test_acknowledging_needs_the_csrf_token_and_clears_the_badge(
    client: httpx.AsyncClient, world: World
) -> None:
    await world.project_key("project:read")
    key_id = await only_key_id(world)
    alert_id = await raise_for(world, key_id, "h1")
    await sign_in(client, world.email)
    url = f"{alerts_page(world)}/{alert_id}/acknowledge"

    refused = await client.post(url, data={"csrf": "forged"})
    assert refused.status_code == 403
    assert 'data-error="csrf_failed"' in refused.text
    missing = await client.post(url, data={})
    assert missing.status_code == 403

    token = await session_csrf(client)
    done = await client.post(url, data={"csrf": token, "back": "https://evil.example/"})
    assert done.status_code == 303
    assert done.headers["location"] == alerts_page(world) + "?done=ack"  # never off-site
    page = await client.get(done.headers["location"])
    assert "Alert acknowledged." in page.text
    assert "No open alerts." in page.text
    assert "alert-pill" not in page.text
    async with world.runtime.sessions() as db:
        alert = await db.get(Alert, alert_id)
        assert alert is not None
        assert alert.acknowledged_by == world.owner_id

    unknown = await client.post(f"{alerts_page(world)}/999999/acknowledge", data={"csrf": token})
    assert unknown.status_code == 404


async def test_readers_see_alerts_but_cannot_acknowledge_them(
    client: httpx.AsyncClient, world: World
) -> None:
    await world.project_key("project:read")
    alert_id = await raise_for(world, await only_key_id(world), "h1")
    async with world.runtime.transaction() as db:
        user = await accounts.create_user(db, "reader@example.com", PASSWORD)
        await accounts.set_org_role(db, world.org_id, user.id, "o_member")
        await accounts.define_custom_role(db, world.org_id, "key reader", ["api_key:read"])
        await accounts.add_project_role(db, world.project_id, user.id, "key reader")
        stranger = await accounts.create_user(db, "stranger@example.com", PASSWORD)
        await accounts.set_org_role(db, world.org_id, stranger.id, "o_member")
        await accounts.define_custom_role(db, world.org_id, "reader", ["project:read"])
        await accounts.add_project_role(db, world.project_id, stranger.id, "reader")

    await sign_in(client, "reader@example.com")
    page = await client.get(alerts_page(world))
    assert page.status_code == 200
    assert "Key made 900 requests." in page.text
    assert ">Acknowledge</button>" not in page.text
    token = await session_csrf(client)
    refused = await client.post(
        f"{alerts_page(world)}/{alert_id}/acknowledge", data={"csrf": token}
    )
    assert refused.status_code == 403
    assert 'data-error="insufficient_permissions"' in refused.text

    client.cookies.clear()
    await sign_in(client, "stranger@example.com")
    hidden = await client.get(alerts_page(world))
    assert hidden.status_code == 403
    assert "Key made 900 requests." not in hidden.text


async def test_a_keys_alerts_show_on_its_usage_page_and_return_there(
    client: httpx.AsyncClient, world: World
) -> None:
    await world.project_key("project:read")
    key_id = await only_key_id(world)
    alert_id = await raise_for(world, key_id, "h1", message="Requests from a new network.")
    await sign_in(client, world.email)
    usage = f"/dashboard/projects/{world.project_id}/settings/api-keys/{key_id}/usage"
    page = await client.get(usage)
    assert "Alerts about this key" in page.text
    assert "Requests from a new network." in page.text
    assert (
        f'href="/dashboard/projects/{world.project_id}/settings/api-keys/{key_id}/compromised"'
        in page.text
    )
    token = await session_csrf(client)
    done = await client.post(
        f"{alerts_page(world)}/{alert_id}/acknowledge",
        data={"csrf": token, "back": usage + "?group_by=hour"},
    )
    assert done.headers["location"] == usage + "?group_by=hour&done=ack"
    back = await client.get(done.headers["location"])
    assert "Alert acknowledged." in back.text
    assert "acknowledged" in back.text
    assert ">Acknowledge</button>" not in back.text
