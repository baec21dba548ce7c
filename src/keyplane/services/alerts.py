"""Alerts (issue 7): stored once per (key, kind, window), written to the audit log and sent to
the project's webhooks, whichever process detects them first."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.database import dialect_insert
from keyplane.adapters.sql.models import Alert, ApiKey, AuditEvent
from keyplane.adapters.sql.paging import keyset_page
from keyplane.adapters.sql.repositories import iso, utcnow
from keyplane.domain.errors import NotFound
from keyplane.services import webhooks

ALERT_EVENT = "alert.raised"
SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class AlertSpec:
    kind: str
    severity: str
    message: str
    # Names the window the alert is about (an hour, a burst window, a leak report): the same
    # key, kind and window alert only once.
    window: str
    org_id: int | None = None
    project_id: int | None = None
    key_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    ip: str | None = None
    user_agent: str | None = None
    # What the alert is about when not the key (a failed-auth burst is per address).
    subject: str | None = None
    # Which mode's webhooks hear of it; None: the key's mode, or live without a key.
    mode: str | None = None

    @property
    def dedup(self) -> str:
        return f"{self.kind}:{self.subject or self.key_id or '-'}:{self.window}"[:200]


def describe(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "org_id": alert.org_id,
        "project_id": alert.project_id,
        "key_id": alert.key_id,
        "kind": alert.kind,
        "severity": alert.severity,
        "message": alert.message,
        "details": alert.details,
        "created_at": iso(alert.created_at),
        "acknowledged_at": iso(alert.acknowledged_at),
        "acknowledged_by": alert.acknowledged_by,
    }


async def raise_alert(db: AsyncSession, spec: AlertSpec) -> Alert | None:
    """Store the alert unless it exists already; returns it when this call created it. The
    audit event and the webhook deliveries are written in the same transaction, so an alert
    is never stored without them (nor they without it)."""
    now = utcnow()
    statement = (
        dialect_insert(db)(Alert)
        .values(
            org_id=spec.org_id,
            project_id=spec.project_id,
            key_id=spec.key_id,
            kind=spec.kind,
            severity=spec.severity,
            message=spec.message[:500],
            details=spec.details,
            dedup=spec.dedup,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["dedup"])
        .returning(Alert.id)
    )
    alert_id = await db.scalar(statement)
    if alert_id is None:
        return None
    alert = await db.get(Alert, alert_id)
    assert alert is not None
    data = {"alert_id": alert_id, "kind": spec.kind, "severity": spec.severity} | spec.details
    db.add(
        AuditEvent(
            org_id=spec.org_id,
            project_id=spec.project_id,
            action=f"alert.{spec.kind}",
            key_id=spec.key_id,
            ip=spec.ip,
            user_agent=(spec.user_agent or "")[:400] or None,
            data=data,
            created_at=now,
        )
    )
    if spec.project_id is not None:
        # An alert about a test key goes to test-mode subscriptions; anything else to live.
        key = await db.get(ApiKey, spec.key_id) if spec.key_id and not spec.mode else None
        mode = spec.mode or (key.mode if key is not None else "live")
        await webhooks.enqueue(
            db, spec.project_id, ALERT_EVENT, {"alert": describe(alert)}, mode=mode
        )
    return alert


async def list_alerts(
    db: AsyncSession,
    project_id: int | None,
    *,
    limit: int,
    before_id: int | None = None,
    unacknowledged: bool = False,
    acknowledged: bool = False,
    key_id: str | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first; returns the page and the id to continue before (None at the end).
    `project_id` None is the operator's view: every alert, including those about an address
    rather than a key (failed-authentication bursts with unknown keys)."""
    query = select(Alert)
    if project_id is not None:
        query = query.where(Alert.project_id == project_id)
    if unacknowledged:
        query = query.where(Alert.acknowledged_at.is_(None))
    if acknowledged:
        query = query.where(Alert.acknowledged_at.is_not(None))
    if key_id is not None:
        query = query.where(Alert.key_id == key_id)
    rows, last = await keyset_page(
        db, query, Alert.id, limit=limit, after_id=before_id, newest_first=True
    )
    return [describe(r) for r in rows], last


async def open_counts(db: AsyncSession, project_ids: list[int]) -> dict[int, int]:
    """How many alerts are not yet acknowledged, per project (one query, for the dashboard's
    navigation badge)."""
    if not project_ids:
        return {}
    rows = await db.execute(
        select(Alert.project_id, func.count())
        .where(Alert.project_id.in_(project_ids), Alert.acknowledged_at.is_(None))
        .group_by(Alert.project_id)
    )
    return {int(pid): int(count) for pid, count in rows.all() if pid is not None}


async def acknowledge(
    db: AsyncSession, project_id: int, alert_id: int, user_id: int | None
) -> dict[str, Any]:
    """Mark an alert as seen (the first acknowledgement stands)."""
    alert = await db.scalar(
        select(Alert).where(Alert.id == alert_id, Alert.project_id == project_id)
    )
    if alert is None:
        raise NotFound(f"No alert {alert_id} in project {project_id}.")
    if alert.acknowledged_at is None:
        await db.execute(
            update(Alert)
            .where(Alert.id == alert_id, Alert.acknowledged_at.is_(None))
            .values(acknowledged_at=utcnow(), acknowledged_by=user_id)
        )
        await db.refresh(alert)
    return describe(alert)
