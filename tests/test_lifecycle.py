"""Expiry reminders: 7 days and 1 day ahead, each exactly once, whatever the processes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from keyplane.adapters.sql.models import AuditEvent
from keyplane.runtime import Runtime
from keyplane.services.lifecycle import remind, send_expiry_notices
from keyplane.settings import Settings
from tests.conftest import World, query_plan


async def _reminders(world: World) -> list[tuple[str | None, int]]:
    async with world.runtime.sessions() as db:
        rows = await db.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "api_key.expiring")
            .order_by(AuditEvent.id)
        )
        return [(event.data["name"], event.data["days"]) for event in rows.all()]


async def test_reminders_go_out_once_each(world: World, settings: Settings) -> None:
    # This runtime's background job would look for reminders too, whenever the machine lets
    # it run; stopped, the two explicit checks below are the only senders.
    await world.runtime.scheduled["expiry_reminders"].stop()
    now = datetime.now(UTC)
    await world.project_key("project:read", name="in 5 days", expires_at=now + timedelta(days=5))
    await world.project_key(
        "project:read", name="in 12 hours", expires_at=now + timedelta(hours=12)
    )
    await world.project_key("project:read", name="in 20 days", expires_at=now + timedelta(days=20))
    await world.project_key("project:read", name="never")

    # Two processes check at the same moment: each reminder is still recorded once.
    other = await Runtime.start(settings, migrate=False, background=False)
    try:
        sent = await asyncio.gather(remind(world.runtime.sessions), remind(other.sessions))
    finally:
        await other.close()
    assert sum(sent) == 2
    assert sorted(await _reminders(world)) == [("in 12 hours", 1), ("in 5 days", 7)]
    assert await remind(world.runtime.sessions) == 0

    # Four days later the 5-day key is one day out: its second reminder, and only that.
    async with world.runtime.transaction() as db:
        assert await send_expiry_notices(db, now + timedelta(days=4, hours=1)) == 1
    assert (await _reminders(world))[-1] == ("in 5 days", 1)
    # Fourteen days later the 20-day key gets its 7-day reminder.
    async with world.runtime.transaction() as db:
        assert await send_expiry_notices(db, now + timedelta(days=14)) == 1
    assert (await _reminders(world))[-1] == ("in 20 days", 7)


async def test_the_reminder_query_uses_its_index(world: World) -> None:
    # It runs every five minutes: on 1,000,000 keys a full scan each time.
    from keyplane.services.lifecycle import due_for_reminder

    async with world.runtime.sessions() as db:
        plan = await query_plan(db, due_for_reminder(datetime.now(UTC), 7))
    assert any("ix_api_keys_expiring" in line for line in plan), plan
