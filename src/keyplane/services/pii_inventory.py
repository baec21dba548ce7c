"""The compliance inventory (issue 11, the guide's "Compliance Considerations"): every key and
webhook that can reach end users' personal data in a project, with its owner, purpose (its
name), and last use; for data-processing records and SOC 2 key inventories. Exported as a
table, JSON or CSV (the CLI's `keyplane audit --pii`, the dashboard's Compliance page)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import ApiKey, Project, User, WebhookEndpoint
from keyplane.adapters.sql.repositories import iso, project_access, utcnow
from keyplane.domain.keys import KeyKind
from keyplane.domain.permissions import Permission, closure
from keyplane.services.webhooks import PII_EVENTS

# What reads end-user personal data: full exports, profiles, and conversations (what people
# wrote, with their user id).
PII_PERMISSIONS = frozenset(
    {Permission.FULL_EXPORT_READ, Permission.USERPOOL_READ, Permission.CONVERSATION_READ}
)
COLUMNS = (
    "type",
    "id",
    "kind",
    "mode",
    "name",
    "owner",
    "personal_data",
    "last_used_at",
    "created_at",
    "target",
)


def _reach(permissions: Iterable[str]) -> list[str]:
    held = closure(Permission(p) for p in permissions if p in Permission._value2member_map_)
    return sorted(str(p) for p in held & PII_PERMISSIONS)


async def inventory(db: AsyncSession, project_id: int) -> list[dict[str, Any]]:
    """Keys first (project keys, then user keys whose owner can reach the project with a
    personal-data permission right now), then webhooks subscribed to personal-data events."""
    project = await db.get(Project, project_id)
    if project is None:
        return []
    now = utcnow()
    active = ApiKey.revoked_at.is_(None) | (ApiKey.revoked_at > now)
    keys = (
        await db.scalars(
            select(ApiKey)
            .where(active)
            .where(
                (ApiKey.project_id == project_id)
                | ((ApiKey.kind == KeyKind.USER) & (ApiKey.org_id == project.org_id))
            )
            .order_by(ApiKey.kind, ApiKey.created_at)
        )
    ).all()
    hooks = (
        await db.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.project_id == project_id)
            .order_by(WebhookEndpoint.id)
        )
    ).all()
    people = (
        {k.created_by for k in keys} | {k.user_id for k in keys} | {h.created_by for h in hooks}
    )
    emails = dict(
        (
            await db.execute(
                select(User.id, User.email).where(User.id.in_({p for p in people if p}))
            )
        ).all()
    )
    items: list[dict[str, Any]] = []
    for key in keys:
        reach = _reach(key.permissions)
        if key.kind == KeyKind.USER and reach:
            assert key.user_id is not None
            access = await project_access(db, key.user_id, project_id)
            owner_holds = {str(p) for p in access[1]} if access else set()
            reach = _reach(set(reach) & owner_holds)
        if not reach:
            continue
        owner_id = key.user_id if key.kind == KeyKind.USER else key.created_by
        items.append(
            {
                "type": "api_key",
                "id": key.id,
                "kind": key.kind,
                "mode": key.mode,
                "name": key.name,
                "owner": emails.get(owner_id) if owner_id else None,
                "personal_data": reach,
                "last_used_at": iso(key.last_used_at),
                "created_at": iso(key.created_at),
                "target": None,
            }
        )
    for hook in hooks:
        events = sorted(set(hook.events) & PII_EVENTS)
        if not events:
            continue
        items.append(
            {
                "type": "webhook",
                "id": str(hook.id),
                "kind": "webhook" if hook.disabled_at is None else "webhook (disabled)",
                "mode": hook.mode,
                "name": hook.description or hook.url,
                "owner": emails.get(hook.created_by) if hook.created_by else None,
                "personal_data": events,
                "last_used_at": iso(hook.last_delivered_at),
                "created_at": iso(hook.created_at),
                "target": hook.url,
            }
        )
    return items


def to_csv(items: list[dict[str, Any]]) -> str:
    """One row per key or webhook; the personal-data list joined with spaces. Cells that a
    spreadsheet would run as a formula are prefixed with a quote (CSV injection)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for item in items:
        row = []
        for column in COLUMNS:
            value = item[column]
            text = (
                " ".join(value) if isinstance(value, list) else "" if value is None else str(value)
            )
            row.append("'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text)
        writer.writerow(row)
    return out.getvalue()
