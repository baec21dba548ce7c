"""Deployments: the channels (web widget, Slack, WhatsApp, API) the agent answers on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import Deployment
from keyplane.adapters.sql.paging import keyset_page
from keyplane.adapters.sql.repositories import iso, utcnow
from keyplane.domain.keyformat import Mode

CHANNELS = ("web", "slack", "whatsapp", "api")
STATUSES = ("active", "paused")


def describe(deployment: Deployment) -> dict[str, Any]:
    return {
        "id": deployment.id,
        "channel": deployment.channel,
        "name": deployment.name,
        "config": dict(deployment.config),
        "status": deployment.status,
        "created_at": iso(deployment.created_at),
        "updated_at": iso(deployment.updated_at),
    }


async def create(
    db: AsyncSession,
    project_id: int,
    mode: Mode,
    *,
    channel: str,
    name: str,
    config: dict[str, Any],
    status: str,
) -> dict[str, Any]:
    now = utcnow()
    deployment = Deployment(
        project_id=project_id,
        mode=mode,
        channel=channel,
        name=name,
        config=config,
        status=status,
        created_at=now,
        updated_at=now,
    )
    db.add(deployment)
    await db.flush()
    return describe(deployment)


async def page(
    db: AsyncSession, project_id: int, mode: Mode, *, limit: int, after_id: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    query = select(Deployment).where(Deployment.project_id == project_id, Deployment.mode == mode)
    found, last = await keyset_page(
        db, query, Deployment.id, limit=limit, after_id=after_id, newest_first=False
    )
    return [describe(d) for d in found], last
