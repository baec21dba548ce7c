"""Project → Compliance (issue 11): every key and webhook that can reach end users' personal
data, with owner, purpose and last use, as a page and as CSV and JSON exports; and
Project → Webhooks with a disabled subscription's notice."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import httpx

from keyplane.adapters.sql.models import WebhookEndpoint
from keyplane.services import webhooks
from keyplane.services.keys import Actor
from tests.conftest import World
from tests.dashboard.test_auth_pages import sign_in


async def _subscribe(world: World, url: str, events: list[str], description: str) -> int:
    async with world.runtime.transaction() as db:
        row, _secret = await webhooks.create(
            db,
            world.runtime.keyring,
            world.project_id,
            url,
            events,
            Actor(user_id=world.owner_id),
            description=description,
            destinations=webhooks.Destinations(allow_private=True),
        )
        return row.id


async def test_the_inventory_page_and_its_exports(client: httpx.AsyncClient, world: World) -> None:
    await world.project_key("full_export:read", name="Data warehouse export")
    await world.project_key("conversation:write", name="=HYPERLINK(evil)")
    await world.project_key("project:read", "metric:read", name="Status page")  # no PII
    await world.user_key("userpool:read")
    await _subscribe(world, "https://10.0.0.5/crm", ["user.updated"], "CRM profile sync")
    await _subscribe(world, "https://10.0.0.6/ops", ["alert.raised"], "Ops pager")  # no PII
    assert (await sign_in(client, world.email)).status_code in (302, 303)
    base = f"/dashboard/projects/{world.project_id}/compliance"

    page = await client.get(base)
    assert page.status_code == 200, page.text
    for shown in ("Data warehouse export", "CRM profile sync", "full_export:read", world.email):
        assert shown in page.text
    assert "Status page" not in page.text
    assert "Ops pager" not in page.text
    assert 'id="export-csv"' in page.text

    exported = await client.get(base, params={"format": "csv"})
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == {
        "Data warehouse export",
        "'=HYPERLINK(evil)",  # never a formula in a spreadsheet
        "user key",
        "CRM profile sync",
    }
    export = by_name["Data warehouse export"]
    assert export["personal_data"] == "full_export:read"
    assert export["owner"] == ""  # made by the operator (the CLI), not by a person
    assert by_name["user key"]["personal_data"] == "userpool:read"
    assert by_name["user key"]["owner"] == world.email
    assert by_name["CRM profile sync"]["type"] == "webhook"
    assert by_name["CRM profile sync"]["target"] == "https://10.0.0.5/crm"
    assert by_name["'=HYPERLINK(evil)"]["personal_data"] == "conversation:read"

    as_json = await client.get(base, params={"format": "json"})
    assert as_json.status_code == 200
    assert {i["name"] for i in as_json.json()["data"]} == {
        "Data warehouse export",
        "=HYPERLINK(evil)",
        "user key",
        "CRM profile sync",
    }
    assert (await client.get(base, params={"format": "xml"})).status_code == 422


async def test_the_webhooks_page_shows_a_disabled_subscription(
    client: httpx.AsyncClient, world: World
) -> None:
    hook_id = await _subscribe(world, "https://10.0.0.5/crm", ["user.updated"], "CRM sync")
    async with world.runtime.transaction() as db:
        await webhooks.disable_after_failures(db, hook_id, "60 attempts failed (last: HTTP 503)")
    assert (await sign_in(client, world.email)).status_code in (302, 303)
    page = await client.get(f"/dashboard/projects/{world.project_id}/webhooks")
    assert page.status_code == 200, page.text
    assert "CRM sync" in page.text
    assert "disabled" in page.text
    assert "HTTP 503" in page.text
    alerts = await client.get(f"/dashboard/projects/{world.project_id}/alerts")
    assert "was disabled" in alerts.text


async def test_the_webhooks_page_tells_no_deliveries_from_deleted_ones(
    client: httpx.AsyncClient, world: World
) -> None:
    never = await _subscribe(world, "https://10.0.0.5/crm", ["user.updated"], "CRM sync")
    swept = await _subscribe(world, "https://10.0.0.6/ops", ["alert.raised"], "Ops pager")
    async with world.runtime.transaction() as db:
        hook = await db.get(WebhookEndpoint, swept)
        assert hook is not None
        hook.last_delivered_at = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    assert (await sign_in(client, world.email)).status_code in (302, 303)
    page = await client.get(f"/dashboard/projects/{world.project_id}/webhooks")
    sections = {
        hook_id: page.text.split(f'id="hook-{hook_id}"', 1)[1].split("</section>", 1)[0]
        for hook_id in (never, swept)
    }
    assert "No deliveries yet." in sections[never]
    assert "last delivered 2026-01-02T03:04:00" in sections[swept]
    assert "No recent deliveries" in sections[swept]
