"""Reminders before a key expires (issue 7): an `api_key.expiring` event 7 days and 1 day
ahead, each exactly once even with many processes running the check."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Select, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keyplane.adapters.sql.models import ApiKey, AuditEvent
from keyplane.adapters.sql.repositories import iso, utcnow
from keyplane.services import webhooks

REMINDER_SECONDS = 300  # how often the deployment looks for reminders that are due
JOB = "expiry_reminders"  # its name among the deployment's jobs (services.schedule)

# Nearest first: a key found 12 hours from expiry gets the 1-day reminder only.
REMINDER_DAYS = (1, 7)


def due_for_reminder(now: datetime, days: int) -> Select[str]:
    """Live keys expiring within `days` that have not had that reminder (a partial index,
    ix_api_keys_expiring, serves it: it runs every few minutes)."""
    return select(ApiKey.id).where(
        ApiKey.expires_at.is_not(None),
        ApiKey.expires_at > now,
        ApiKey.expires_at <= now + timedelta(days=days),
        ApiKey.revoked_at.is_(None),
        or_(ApiKey.expiry_notice.is_(None), ApiKey.expiry_notice > days),
    )


async def remind(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Send the expiry reminders that are due, in one transaction; returns how many."""
    async with sessions() as db:
        sent = await send_expiry_notices(db, utcnow())
        await db.commit()
    return sent


async def send_expiry_notices(db: AsyncSession, now: datetime) -> int:
    """Record the reminders that are due; returns how many were sent."""
    sent = 0
    for days in REMINDER_DAYS:
        due = (await db.scalars(due_for_reminder(now, days))).all()
        for key_id in due:
            # Claim the reminder with a conditional update: of several processes running this
            # at once, exactly one changes the row, and only that one records the event.
            claimed = await db.scalar(
                update(ApiKey)
                .where(
                    ApiKey.id == key_id,
                    or_(ApiKey.expiry_notice.is_(None), ApiKey.expiry_notice > days),
                )
                .values(expiry_notice=days)
                .returning(ApiKey)
            )
            if claimed is None:
                continue
            data = {"days": days, "expires_at": iso(claimed.expires_at), "name": claimed.name}
            db.add(
                AuditEvent(
                    org_id=claimed.org_id,
                    project_id=claimed.project_id,
                    action="api_key.expiring",
                    key_id=claimed.id,
                    data=data,
                    created_at=now,
                )
            )
            if claimed.project_id is not None:
                await webhooks.enqueue(
                    db,
                    claimed.project_id,
                    "api_key.expiring",
                    {"key_id": claimed.id} | data,
                    mode=claimed.mode,
                )
            sent += 1
    return sent
