"""The audit log (append-only: the application only ever inserts) and the quarterly key
audit the guide asks teams to run by hand (issue 7)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import ApiKey, AuditEvent, KeyUsageHourly, User
from keyplane.adapters.sql.paging import keyset_page
from keyplane.adapters.sql.repositories import aware, iso, utcnow
from keyplane.domain.keys import ROTATION_DAYS, KeyLabel
from keyplane.domain.permissions import Permission, closure
from keyplane.services.keys import rotation_schedule

UNUSED_AFTER = timedelta(days=90)
UNUSED_SOON = timedelta(days=30)
# Names that say nothing about where a key is used (the guide: "Descriptive Naming").
_VAGUE = {"key", "api key", "apikey", "test", "new key", "my key", "untitled", "default", "temp"}
PRIVILEGE_WINDOW = timedelta(days=30)


def describe(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "action": event.action,
        "org_id": event.org_id,
        "project_id": event.project_id,
        "key_id": event.key_id,
        "actor_user_id": event.actor_user_id,
        "actor_key_id": event.actor_key_id,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "data": event.data,
        "created_at": iso(event.created_at),
    }


async def events(
    db: AsyncSession,
    project_id: int,
    *,
    limit: int,
    before_id: int | None = None,
    action: str | None = None,
    key_id: str | None = None,
    involving: str | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first; returns the page and the id to continue before (None at the end).
    `involving` is a key the event is about or that acted (a user key managing keys)."""
    query = select(AuditEvent).where(AuditEvent.project_id == project_id)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if key_id is not None:
        query = query.where(AuditEvent.key_id == key_id)
    if involving is not None:
        query = query.where(
            (AuditEvent.key_id == involving) | (AuditEvent.actor_key_id == involving)
        )
    rows, last = await keyset_page(
        db, query, AuditEvent.id, limit=limit, after_id=before_id, newest_first=True
    )
    return [describe(r) for r in rows], last


def descriptive(name: str) -> bool:
    cleaned = name.strip().lower()
    return len(cleaned) >= 4 and cleaned.rstrip(" 0123456789") not in _VAGUE


async def key_report(db: AsyncSession, project_id: int) -> list[dict[str, Any]]:
    """Every active key of a project with what a quarterly audit looks for: unused keys,
    overdue rotation, and permissions granted but not used in the last 30 days."""
    now = utcnow()
    keys = (
        await db.scalars(
            select(ApiKey)
            .where(ApiKey.project_id == project_id)
            .where(ApiKey.revoked_at.is_(None) | (ApiKey.revoked_at > now))
            .order_by(ApiKey.created_at)
        )
    ).all()
    owners = dict(
        (
            await db.execute(
                select(User.id, User.email).where(
                    User.id.in_({k.created_by for k in keys if k.created_by})
                )
            )
        ).all()
    )
    used: dict[str, set[str]] = defaultdict(set)
    if keys:
        rows = await db.execute(
            select(KeyUsageHourly.key_id, KeyUsageHourly.permission)
            .where(KeyUsageHourly.key_id.in_([k.id for k in keys]))
            .where(KeyUsageHourly.hour >= now - PRIVILEGE_WINDOW)
            .where(KeyUsageHourly.status_class == "success")
            .distinct()
        )
        for key_id, permission in rows:
            used[key_id].add(permission)
    report = []
    for key in keys:
        created = aware(key.created_at) or now
        last_used = aware(key.last_used_at)
        findings = []
        if last_used is None and now - created > timedelta(days=7):
            findings.append("never used")
        elif last_used is not None and now - last_used > UNUSED_AFTER:
            findings.append(f"unused for {(now - last_used).days} days")
        elif last_used is not None and now - last_used > UNUSED_SOON:
            findings.append(f"unused for {(now - last_used).days} days (revoke at 90?)")
        if not descriptive(key.name):
            findings.append(
                f"non-descriptive name {key.name!r}: say where it is used, e.g. "
                "'Production CRM Sync'"
            )
        if rotation_schedule(key)["rotation_overdue"]:
            policy = f"{key.label} " if key.label else ""
            findings.append(
                f"rotation overdue ({(now - created).days} days old; {policy}schedule "
                f"{ROTATION_DAYS[KeyLabel(key.label) if key.label else None]} days)"
            )
        # Implied permissions (read under write) count as used when the write is.
        # A project's own permissions (issue 10) count when a verification asked for them.
        exercised = {
            str(p)
            for p in closure(
                Permission(p) for p in used[key.id] if p in Permission._value2member_map_
            )
        } | {p for p in used[key.id] if p not in Permission._value2member_map_}
        unused = sorted(set(key.permissions) - exercised)
        if last_used is not None and unused:
            findings.append("over-privileged: unused " + ", ".join(unused))
        report.append(
            {
                "id": key.id,
                "name": key.name,
                "created_by": owners.get(key.created_by) if key.created_by else None,
                "created_at": iso(created),
                "last_used_at": iso(last_used),
                "permissions": sorted(key.permissions),
                "unused_permissions": unused,
                "findings": findings,
            }
        )
    return report
