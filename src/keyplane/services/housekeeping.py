"""Housekeeping: what keyplane keeps, and for how long.

Left alone, a deployment's tables only grow: a row per key, hour, status and permission of
usage; a row per key and caller address (one per visitor for a key used from web pages);
every webhook delivery; every audit event; an expired row per dashboard sign-in, per SSO
round trip and per email somebody mistyped a password for. A sweep deletes what is past its
retention (settings, `None`: kept forever) and what has simply expired.

Old rows go an hour of their timestamps at a time, one short transaction each, through the
timestamp's index: a first sweep over years of backlog never holds a long lock (SQLite has
one writer) nor a huge transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from keyplane.adapters.sql.models import (
    AuditEvent,
    KeyClient,
    KeyUsageHourly,
    LoginThrottle,
    OidcLogin,
    Session,
    WebhookDelivery,
)
from keyplane.adapters.sql.repositories import aware, utcnow

log = structlog.get_logger(__name__)

SLICE = timedelta(hours=1)  # of timestamps per delete statement
JOB = "housekeeping"  # its name among the deployment's jobs (services.schedule)


@dataclass(frozen=True)
class Retention:
    usage: timedelta | None = timedelta(days=400)
    clients: timedelta | None = timedelta(days=90)
    webhook_deliveries: timedelta | None = timedelta(days=30)
    audit: timedelta | None = None
    # A sign-in throttle row matters until its failure window and any lockout are over.
    sign_in_window: timedelta = timedelta(minutes=15)


def days(value: int) -> timedelta | None:
    """A retention setting in days; 0 keeps forever."""
    return timedelta(days=value) if value else None


Sessions = async_sessionmaker[AsyncSession]


async def sweep(
    sessions: Sessions, retention: Retention, now: datetime | None = None
) -> dict[str, int]:
    """Delete what is past retention or expired; returns how many rows of each kind."""
    now = now or utcnow()
    deleted = {
        "usage_rows": await _before(sessions, KeyUsageHourly.hour, now, retention.usage),
        "clients": await _before(sessions, KeyClient.last_seen, now, retention.clients),
        "webhook_deliveries": await _before(
            sessions,
            WebhookDelivery.created_at,
            now,
            retention.webhook_deliveries,
            # A delivery still being retried is work to do, not history.
            (WebhookDelivery.status != "pending",),
        ),
        "audit_events": await _before(sessions, AuditEvent.created_at, now, retention.audit),
    }
    async with sessions() as db:
        deleted["sessions"] = await _delete(db, Session, Session.expires_at <= now)
        deleted["sso_logins"] = await _delete(db, OidcLogin, OidcLogin.expires_at <= now)
        deleted["sign_in_throttles"] = await _delete(
            db,
            LoginThrottle,
            LoginThrottle.window_started_at <= now - retention.sign_in_window,
            or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= now),
        )
        await db.commit()
    if any(deleted.values()):
        log.info("housekeeping", **deleted)
    return deleted


async def _before(
    sessions: Sessions,
    stamp: InstrumentedAttribute[datetime],
    now: datetime,
    keep: timedelta | None,
    only: Sequence[ColumnElement[bool]] = (),
) -> int:
    """Delete the rows whose `stamp` is older than `keep`, oldest first, SLICE at a time."""
    if keep is None:
        return 0
    cutoff = now - keep
    total = 0
    while True:
        async with sessions() as db:
            oldest = aware(await db.scalar(select(func.min(stamp)).where(stamp < cutoff, *only)))
            if oldest is None:
                return total
            bound = min(oldest + SLICE, cutoff)
            total += await _delete(db, stamp.class_, stamp < bound, *only)
            await db.commit()


async def _delete(db: AsyncSession, model: Any, *where: ColumnElement[bool]) -> int:
    result = await db.execute(delete(model).where(*where))
    return int(result.rowcount)  # type: ignore[attr-defined]
