"""The SDKs' webhook subscriptions, batch upserts and webhook verification helper against a
live server over real HTTP, with a real receiver on loopback (test mode)."""

from __future__ import annotations

import asyncio
import time

import pytest

from keyplane.sdk import (
    AsyncClient,
    Client,
    WebhookSignatureError,
    errors,
    parse_webhook,
    verify_webhook_signature,
)
from tests.sdk.conftest import LiveServer
from tests.security.receiver import receiver


async def test_webhooks_and_batches_sync(live_server: LiveServer) -> None:
    world = live_server.world
    key = await world.project_key(
        "webhook:write", "userpool:update", "knowledge:write", "table:write", test=True
    )
    with receiver() as hook, Client(key, world.project_id, live_server.base_url) as client:
        created = client.webhooks.create(
            url=hook.url, events=["snippet.changed"], description="Docs mirror"
        )
        assert created.secret is not None
        assert created.secret.startswith("whsec_")
        assert (created.mode, created.enabled) == ("test", True)
        assert [w.id for w in client.webhooks.list()] == [created.id]
        assert client.webhooks.get(created.id).secret is None

        result = client.snippets.upsert_many(
            [
                {"title": "Refunds", "content": "30 days.", "url": "https://d.example.com/r"},
                {"title": "Shipping", "content": "2 days."},
            ]
        )
        assert [(i.index, i.status) for i in result.data] == [(0, "created"), (1, "created")]
        deadline = time.monotonic() + 15
        while len(hook.requests) < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        for request in hook.requests:
            header = request.headers["X-Keyplane-Signature"]
            assert verify_webhook_signature(created.secret, header, request.body)
            event = parse_webhook(created.secret, header, request.body)
            assert event["event"] == "snippet.changed"
            assert event["mode"] == "test"
            with pytest.raises(WebhookSignatureError):
                parse_webhook("whsec_wrong", header, request.body)

        page = client.webhooks.deliveries(created.id)
        while {d.status for d in page.data} != {"delivered"}:  # recorded after the answers
            assert time.monotonic() < deadline, page.data
            await asyncio.sleep(0.05)
            page = client.webhooks.deliveries(created.id)
        assert page.data[0].status_code == 200
        replayed = client.webhooks.replay(created.id, page.data[0].id)
        assert replayed.replay_of == page.data[0].id
        assert len(list(client.webhooks.iter_deliveries(created.id, page_size=1))) == 3

        paused = client.webhooks.update(created.id, enabled=False, description=None)
        assert (paused.enabled, paused.description) == (False, None)

        # Users in chunks: 2,500 in three requests, one result per item in order.
        users = [{"external_id": f"u{i}", "locale": "en"} for i in range(2500)]
        made = client.users.upsert_many(users)
        assert (made.created, made.updated) == (2500, 0)
        assert [i.index for i in made.data] == list(range(2500))
        assert made.data[2499].external_id == "u2499"
        with pytest.raises(errors.ValidationError) as refused:
            client.users.upsert_many([{"external_id": "ok"}, {"external_id": "x", "email": "no"}])
        assert "item 1, field email" in str(refused.value)

        table = client.tables.create(name="stock", columns=[{"name": "sku", "type": "text"}])
        rows = client.tables.upsert_rows(table.id, [{"values": {"sku": "A"}}])
        changed = client.tables.upsert_rows(
            table.id, [{"id": rows.data[0].id, "values": {"sku": "B"}}]
        )
        assert changed.data[0].status == "updated"
        client.webhooks.delete(created.id)
        assert client.webhooks.list() == []


async def test_webhooks_and_batches_async(live_server: LiveServer) -> None:
    world = live_server.world
    key = await world.project_key("webhook:write", "userpool:update", test=True)
    async with AsyncClient(key, world.project_id, live_server.base_url) as client:
        created = await client.webhooks.create(url="http://127.0.0.1:9/h", events=["user.updated"])
        assert created.secret
        made = await client.users.upsert_many([{"external_id": "a"}, {"external_id": "b"}])
        assert made.created == 2
        page = await client.webhooks.deliveries(created.id)
        assert [d.event for d in page.data] == ["user.updated", "user.updated"]
        changed = await client.webhooks.update(created.id, events=["user.updated"], enabled=False)
        assert changed.enabled is False
        assert [w.id for w in await client.webhooks.list()] == [created.id]
        await client.webhooks.delete(created.id)
        with pytest.raises(errors.NotFound):
            await client.webhooks.get(created.id)
