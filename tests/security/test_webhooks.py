"""Webhooks end to end: endpoints managed through the API, alerts and expiry reminders
delivered to a real HTTP receiver on loopback, signed, retried with backoff after failures,
logged, and never sent twice by competing senders."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from keyplane.adapters.sql.models import WebhookDelivery
from keyplane.adapters.sql.repositories import utcnow
from keyplane.runtime import Runtime
from keyplane.services.alerts import AlertSpec, raise_alert
from keyplane.services.housekeeping import Retention, sweep
from keyplane.services.lifecycle import remind
from keyplane.services.pii_inventory import inventory
from keyplane.services.webhook_sender import WebhookSender
from keyplane.services.webhooks import Destinations
from keyplane.settings import Settings
from keyplane.webhooks import verify_signature
from tests.conftest import TEST_SECRET, World, bearer
from tests.security.receiver import receiver

MAX_ATTEMPTS = 4


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
        data_dir=tmp_path,
        change_poll_seconds=0.05,
        webhook_poll_seconds=0.05,
        webhook_retry_base_seconds=0.1,
        webhook_max_attempts=MAX_ATTEMPTS,
        webhook_timeout_seconds=5,
        webhook_allow_private=True,  # the receivers are on loopback; subscribed in live mode
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture(autouse=True)
def no_dns(runtime: Runtime) -> None:
    """Names in these tests resolve to nothing (no DNS query leaves the machine)."""

    async def unresolved(_host: str, _port: int) -> list[str]:
        return []

    runtime.webhooks.destinations = Destinations(allow_private=True, resolve=unresolved)


def _hooks(world: World, suffix: str = "") -> str:
    return f"/v1/projects/{world.project_id}/webhooks{suffix}"


async def _subscribe(
    client: httpx.AsyncClient, world: World, url: str, events: list[str] | None = None
) -> dict[str, Any]:
    admin = await world.user_key("webhook:write")
    response = await client.post(
        _hooks(world), headers=bearer(admin), json={"url": url, "events": events}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _alert(runtime: Runtime, world: World, window: str = "w1") -> None:
    async with runtime.transaction() as db:
        await raise_alert(
            db,
            AlertSpec(
                kind="volume_spike",
                severity="medium",
                message="Key k used 10x its usual volume.",
                window=window,
                org_id=world.org_id,
                project_id=world.project_id,
                key_id="key_test",
                details={"count": 500},
            ),
        )


async def _deliveries(
    client: httpx.AsyncClient, world: World, webhook_id: int, until: str, wait: float = 15
) -> list[dict[str, Any]]:
    admin = await world.user_key("webhook:read")
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        response = await client.get(
            _hooks(world, f"/{webhook_id}/deliveries"), headers=bearer(admin)
        )
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        if data and all(d["status"] == until for d in data):
            return data
        assert asyncio.get_running_loop().time() < deadline, data
        await asyncio.sleep(0.05)


async def test_an_alert_is_delivered_signed_after_two_failures(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    with receiver(fail_first=2) as hook:
        created = await _subscribe(client, world, hook.url)
        secret = created["secret"]
        assert secret.startswith("whsec_")
        await _alert(runtime, world)
        [delivery] = await _deliveries(client, world, created["id"], until="delivered")

    assert delivery["attempts"] == 3
    assert delivery["status_code"] == 200
    assert delivery["last_error"] == "HTTP 500"  # what went wrong before it went right
    assert delivery["event"] == "alert.raised"
    assert len(hook.requests) == 3
    bodies = {r.body for r in hook.requests}
    assert len(bodies) == 1  # every retry sends the same bytes
    for request in hook.requests:
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert headers["x-keyplane-event"] == "alert.raised"
        assert headers["x-keyplane-delivery"] == str(delivery["id"])
        assert headers["content-type"] == "application/json"
        assert verify_signature(secret, headers["x-keyplane-signature"], request.body)
        assert not verify_signature("whsec_forged", headers["x-keyplane-signature"], request.body)
    payload = json.loads(hook.requests[0].body)
    assert payload["event"] == "alert.raised"
    assert payload["project_id"] == world.project_id
    assert payload["data"]["alert"]["kind"] == "volume_spike"


async def test_a_receiver_that_keeps_failing_is_given_up_after_max_attempts(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    with receiver(fail_first=100, fail_status=503) as hook:
        created = await _subscribe(client, world, hook.url)
        await _alert(runtime, world)
        [delivery] = await _deliveries(client, world, created["id"], until="failed")
    assert delivery["attempts"] == MAX_ATTEMPTS
    assert delivery["status_code"] == 503
    assert delivery["next_attempt_at"] is None
    assert len(hook.requests) == MAX_ATTEMPTS


async def test_retries_back_off(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    """The pause after failed attempt n is between half and all of base * 2^(n-1) (plus the
    poll interval): 0.05-0.1 s, then 0.1-0.2 s, then 0.2-0.4 s here."""
    with receiver(fail_first=3) as hook:
        created = await _subscribe(client, world, hook.url)
        await _alert(runtime, world)
        await _deliveries(client, world, created["id"], until="delivered")
    times = [r.at for r in hook.requests]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(gaps) == 3
    for attempt, gap in enumerate(gaps, start=1):
        assert gap >= 0.5 * 0.1 * 2 ** (attempt - 1), gaps
    assert gaps[2] > gaps[0]


async def test_an_unreachable_receiver_is_retried_and_logged(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    with receiver() as hook:
        dead_url = hook.url  # the port is closed once the receiver stops
    created = await _subscribe(client, world, dead_url)
    await _alert(runtime, world)
    [delivery] = await _deliveries(client, world, created["id"], until="failed")
    assert delivery["status_code"] is None
    assert "Connect" in delivery["last_error"]


async def test_competing_senders_send_each_delivery_once(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    await runtime.webhooks.stop()  # only the two senders below
    with receiver() as hook:
        await _subscribe(client, world, hook.url)
        for window in range(20):
            await _alert(runtime, world, window=f"w{window}")
        senders = [
            WebhookSender(
                runtime.sessions,
                runtime.keyring,
                poll_seconds=1,
                retry_base_seconds=60,
                max_attempts=3,
                timeout_seconds=5,
                destinations=runtime.webhooks.destinations,
            )
            for _ in range(2)
        ]
        for _ in range(5):
            await asyncio.gather(*(s.send_due() for s in senders))
    ids = [r.headers["X-Keyplane-Delivery"] for r in hook.requests]
    assert len(ids) == 20
    assert len(set(ids)) == 20


async def test_a_pending_delivery_survives_a_restart(
    client: httpx.AsyncClient, world: World, runtime: Runtime, settings: Settings
) -> None:
    await runtime.webhooks.stop()  # this "process" dies before sending anything
    with receiver() as hook:
        created = await _subscribe(client, world, hook.url)
        await _alert(runtime, world)
        restarted = await Runtime.start(settings, migrate=False)
        try:
            await _deliveries(client, world, created["id"], until="delivered")
        finally:
            await restarted.close()
    assert len(hook.requests) == 1


async def test_expiry_reminders_go_to_webhooks(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    with receiver() as hook:
        created = await _subscribe(client, world, hook.url, ["api_key.expiring"])
        await world.project_key("project:read", expires_at=utcnow() + timedelta(days=3))
        assert await remind(runtime.sessions) == 1
        [delivery] = await _deliveries(client, world, created["id"], until="delivered")
    assert delivery["event"] == "api_key.expiring"
    payload = json.loads(hook.requests[0].body)
    assert payload["data"]["days"] == 7
    assert verify_signature(
        created["secret"], hook.requests[0].headers["X-Keyplane-Signature"], hook.requests[0].body
    )


async def test_managing_webhooks(client: httpx.AsyncClient, world: World) -> None:
    writer = await world.user_key("webhook:write")
    reader = await world.user_key("webhook:read")
    created = await client.post(
        _hooks(world),
        headers=bearer(writer),
        json={"url": "https://example.com/hooks", "events": ["alert.raised"]},
    )
    assert created.status_code == 201
    secret = created.json()["secret"]
    listed = await client.get(_hooks(world), headers=bearer(reader))
    assert listed.status_code == 200
    assert listed.json()["data"][0]["events"] == ["alert.raised"]
    assert secret not in listed.text
    assert '"secret"' not in listed.text

    refused = await client.post(
        _hooks(world), headers=bearer(reader), json={"url": "https://example.com/x"}
    )
    assert refused.status_code == 403
    assert refused.json()["required"] == "webhook:write"
    # Project keys holding webhook:* manage the webhooks of their own mode (issue 11).
    project_key = await world.project_key("webhook:read", "webhook:write")
    by_key = await client.get(_hooks(world), headers=bearer(project_key))
    assert by_key.status_code == 200
    assert [w["id"] for w in by_key.json()["data"]] == [created.json()["id"]]
    test_key = await world.project_key("webhook:read", test=True)
    assert (await client.get(_hooks(world), headers=bearer(test_key))).json()["data"] == []
    for bad in ({"url": "ftp://example.com"}, {"url": "not a url"}, {"url": "https://"}):
        response = await client.post(_hooks(world), headers=bearer(writer), json=bad)
        assert response.status_code == 422, bad
        assert response.json()["error"] == "validation_error"
    unknown_event = await client.post(
        _hooks(world), headers=bearer(writer), json={"url": "https://e.com", "events": ["x"]}
    )
    assert unknown_event.status_code == 422

    webhook_id = created.json()["id"]
    gone = await client.delete(_hooks(world, f"/{webhook_id}"), headers=bearer(writer))
    assert gone.status_code == 204
    assert (await client.get(_hooks(world), headers=bearer(reader))).json()["data"] == []
    again = await client.delete(_hooks(world, f"/{webhook_id}"), headers=bearer(writer))
    assert again.status_code == 404
    assert again.json()["error"] == "not_found"


async def test_a_webhooks_last_delivery_outlives_its_deliveries(
    client: httpx.AsyncClient, world: World, runtime: Runtime
) -> None:
    # The PII inventory says when each webhook last sent anything; housekeeping deletes
    # deliveries after 30 days, and a webhook quiet since then still has a last use.
    with receiver() as hook:
        created = await _subscribe(client, world, hook.url, ["api_key.expiring", "user.updated"])
        await world.project_key("project:read", expires_at=utcnow() + timedelta(days=3))
        assert await remind(runtime.sessions) == 1
        [delivery] = await _deliveries(client, world, created["id"], until="delivered")
    swept = await sweep(runtime.sessions, Retention(), utcnow() + timedelta(days=31))
    assert swept["webhook_deliveries"] == 1
    async with runtime.sessions() as db:
        assert await db.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
        [listed] = [i for i in await inventory(db, world.project_id) if i["type"] == "webhook"]
    assert listed["last_used_at"] == delivery["delivered_at"]
    reader = await world.user_key("webhook:read")
    shown = await client.get(_hooks(world, f"/{created['id']}"), headers=bearer(reader))
    assert shown.json()["last_delivered_at"] == delivery["delivered_at"]
