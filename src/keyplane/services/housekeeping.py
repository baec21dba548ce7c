"""Housekeeping: what keyplane keeps, and for how long.

Left alone, a deployment's tables only grow: a row per key, hour, status and permission of
usage; a row per key and caller address (one per visitor for a key used from web pages);
every webhook delivery; every audit event; a row per dashboard sign-in, and per email or
browser somebody typed a wrong password for; the change feed's events. A sweep deletes what
is past its retention (`None`: kept forever) and what has simply expired. (Expired SSO round
trips are deleted by the next SSO sign-in, services.sso.)

Old rows go BATCH at a time, each batch its own short transaction, found through the
timestamp's index: a first sweep over years of backlog never holds a long lock (SQLite has
one writer) nor a huge transaction, and stops between two batches when asked to.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Select, delete, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from keyplane.adapters.sql.models import (
    AuditEvent,
    ChangeEvent,
    KeyClient,
    KeyUsageHourly,
    LoginThrottle,
    Session,
    WebhookDelivery,
)
from keyplane.adapters.sql.repositories import utcnow
from keyplane.settings import Settings

log = structlog.get_logger(__name__)

JOB = "housekeeping"  # its name among the deployment's jobs (services.schedule)
BATCH = 5_000  # rows per delete statement and transaction
CHANGE_EVENTS_KEPT = timedelta(hours=1)


@dataclass(frozen=True)
class Retention:
    usage: timedelta | None = timedelta(days=400)
    clients: timedelta | None = timedelta(days=90)
    webhook_deliveries: timedelta | None = timedelta(days=30)
    audit: timedelta | None = None
    # A sign-in throttle row matters while its failure window lasts (and any lockout).
    sign_in_throttles: timedelta = timedelta(minutes=15)

    @classmethod
    def from_settings(cls, settings: Settings) -> Retention:
        def days(value: int) -> timedelta | None:  # 0 keeps forever
            return timedelta(days=value) if value else None

        return cls(
            usage=days(settings.usage_retention_days),
            clients=days(settings.client_retention_days),
            webhook_deliveries=days(settings.webhook_delivery_retention_days),
            audit=days(settings.audit_retention_days),
            sign_in_throttles=timedelta(seconds=settings.login_failure_window_seconds),
        )


Stamp = InstrumentedAttribute[datetime]


def past_retention(
    retention: Retention, now: datetime
) -> list[tuple[str, Stamp, list[ColumnElement[bool]]]]:
    """What goes for its age: (what, its timestamp, which rows), for each kept for less than
    forever."""
    kinds: list[tuple[str, Stamp, timedelta | None, list[ColumnElement[bool]]]] = [
        ("usage_rows", KeyUsageHourly.hour, retention.usage, []),
        ("clients", KeyClient.last_seen, retention.clients, []),
        # A delivery still being retried is work to do, not history.
        (
            "webhook_deliveries",
            WebhookDelivery.created_at,
            retention.webhook_deliveries,
            [WebhookDelivery.status != "pending"],
        ),
        ("audit_events", AuditEvent.created_at, retention.audit, []),
    ]
    return [
        (name, stamp, [stamp < now - keep, *only])
        for name, stamp, keep, only in kinds
        if keep is not None
    ]


async def sweep(
    sessions: async_sessionmaker[AsyncSession],
    retention: Retention,
    now: datetime | None = None,
    *,
    stopping: Callable[[], bool] = lambda: False,
) -> dict[str, int]:
    """Delete what is past retention or expired; returns how many rows of each kind (zero for
    what is kept forever)."""
    now = now or utcnow()
    deleted = {"usage_rows": 0, "clients": 0, "webhook_deliveries": 0, "audit_events": 0}
    for name, stamp, where in past_retention(retention, now):
        while not stopping():
            async with sessions() as db:
                batch = await _delete_batch(db, stamp.class_, where)
                await db.commit()
            deleted[name] += batch
            if batch < BATCH:
                break
    async with sessions() as db:
        # Every process has read these within seconds (services.changes polls twice a second).
        deleted["change_events"] = await _delete(
            db, ChangeEvent, ChangeEvent.created_at < now - CHANGE_EVENTS_KEPT
        )
        deleted["sessions"] = await _delete(db, Session, Session.expires_at <= now)
        deleted["sign_in_throttles"] = await _delete(
            db,
            LoginThrottle,
            LoginThrottle.window_started_at <= now - retention.sign_in_throttles,
            or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= now),
        )
        await db.commit()
    if any(deleted.values()):
        log.info("housekeeping", **deleted)
    return deleted


def _row_id(dialect: str) -> ColumnElement[Any]:
    return literal_column("ctid" if dialect == "postgresql" else "rowid")


def batch_of(model: Any, where: Sequence[ColumnElement[bool]], dialect: str) -> Select[Any]:
    """The physical ids of up to BATCH rows matching `where` (PostgreSQL's ctid, SQLite's
    rowid): deleting by them touches only those rows, whatever the table's primary key."""
    return select(_row_id(dialect)).select_from(model).where(*where).limit(BATCH)


async def _delete_batch(db: AsyncSession, model: Any, where: Sequence[ColumnElement[bool]]) -> int:
    dialect = db.get_bind().dialect.name
    ids, row_id = batch_of(model, where, dialect), _row_id(dialect)
    # PostgreSQL: "= ANY(ARRAY(...))" is a TID scan; "IN (subquery)" may become a join.
    matching = (
        row_id == func.any(func.array(ids.scalar_subquery()))
        if dialect == "postgresql"
        else row_id.in_(ids)
    )
    result = await db.execute(delete(model).where(matching))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def _delete(db: AsyncSession, model: Any, *where: ColumnElement[bool]) -> int:
    result = await db.execute(delete(model).where(*where))
    return int(result.rowcount)  # type: ignore[attr-defined]
