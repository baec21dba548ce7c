"""Webhook endpoints of a project and the outbox rows that deliver events to them (issue 7).
Sending happens in the background (`services/webhook_sender.py`); here events are only
written, in the transaction that produced them."""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import AuditEvent, Project, WebhookDelivery, WebhookEndpoint
from keyplane.adapters.sql.paging import keyset_page
from keyplane.adapters.sql.repositories import iso, utcnow
from keyplane.domain.errors import NotFound, ValidationFailed
from keyplane.services.crypto import Keyring
from keyplane.services.keys import Actor

EVENTS = ("alert.raised", "api_key.expiring")
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
MAX_ENDPOINTS_PER_PROJECT = 20


def describe(row: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": row.id,
        "project_id": row.project_id,
        "url": row.url,
        "events": list(row.events),
        "created_at": iso(row.created_at),
        "created_by": row.created_by,
    }


def describe_delivery(row: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": row.id,
        "webhook_id": row.endpoint_id,
        "event": row.event,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": iso(row.next_attempt_at) if row.status == "pending" else None,
        "status_code": row.last_status_code,
        "last_error": row.last_error,
        "created_at": iso(row.created_at),
        "delivered_at": iso(row.delivered_at),
    }


def _sealing_context(endpoint_id: int) -> str:
    # Associated data binding the sealed secret to its row (see Keyring.encrypt).
    return f"webhook:{endpoint_id}"


def signing_secret(keyring: Keyring, row: WebhookEndpoint) -> str:
    return keyring.decrypt(row.secret_version, row.secret_sealed, _sealing_context(row.id))


def _check_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        raise ValidationFailed(
            "The webhook URL must be an http:// or https:// URL with a host, e.g. "
            "https://example.com/keyplane-events.",
            details=[{"loc": ["body", "url"], "msg": "invalid URL"}],
        )
    return url


def _check_events(events: list[str] | None) -> list[str]:
    chosen = sorted(set(events)) if events else list(EVENTS)
    unknown = [e for e in chosen if e not in EVENTS]
    if unknown:
        raise ValidationFailed(
            f"Unknown webhook event {unknown[0][:64]!r}; choose from {', '.join(EVENTS)}.",
            details=[{"loc": ["body", "events"], "msg": "unknown event"}],
        )
    return chosen


async def create(
    db: AsyncSession,
    keyring: Keyring,
    project_id: int,
    url: str,
    events: list[str] | None,
    actor: Actor,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (returned once; stored sealed)."""
    project = await db.get(Project, project_id)
    if project is None:
        raise NotFound(f"No project with id {project_id}.")
    existing = await db.scalars(
        select(WebhookEndpoint.id).where(WebhookEndpoint.project_id == project_id)
    )
    if len(existing.all()) >= MAX_ENDPOINTS_PER_PROJECT:
        raise ValidationFailed(
            f"A project has at most {MAX_ENDPOINTS_PER_PROJECT} webhooks; remove one first."
        )
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    row = WebhookEndpoint(
        org_id=project.org_id,
        project_id=project_id,
        url=_check_url(url),
        events=_check_events(events),
        secret_version=0,
        secret_sealed=b"",
        created_at=utcnow(),
        created_by=actor.user_id,
    )
    db.add(row)
    await db.flush()  # the id is the sealing context
    row.secret_version, row.secret_sealed = keyring.encrypt(secret, _sealing_context(row.id))
    _audit(db, row, "webhook.created", actor)
    return row, secret


async def list_endpoints(db: AsyncSession, project_id: int) -> list[WebhookEndpoint]:
    rows = await db.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.project_id == project_id)
        .order_by(WebhookEndpoint.id)
    )
    return list(rows.all())


async def get_endpoint(db: AsyncSession, project_id: int, webhook_id: int) -> WebhookEndpoint:
    row = await db.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.id == webhook_id, WebhookEndpoint.project_id == project_id
        )
    )
    if row is None:
        raise NotFound(f"No webhook {webhook_id} in project {project_id}.")
    return row


async def remove(
    db: AsyncSession,
    project_id: int,
    webhook_id: int,
    actor: Actor,
) -> None:
    """Delete an endpoint; its pending deliveries go with it (nothing more is sent)."""
    row = await get_endpoint(db, project_id, webhook_id)
    _audit(db, row, "webhook.deleted", actor)
    await db.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == row.id))
    await db.delete(row)


async def deliveries(
    db: AsyncSession, project_id: int, webhook_id: int, *, limit: int, before_id: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    await get_endpoint(db, project_id, webhook_id)
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == webhook_id)
    rows, last = await keyset_page(
        db, query, WebhookDelivery.id, limit=limit, after_id=before_id, newest_first=True
    )
    return [describe_delivery(r) for r in rows], last


async def enqueue(db: AsyncSession, project_id: int, event: str, data: dict[str, Any]) -> int:
    """Queue `event` for every endpoint of the project subscribed to it; returns how many.
    The body is fixed here, so every retry sends (and signs) exactly the same bytes."""
    now = utcnow()
    queued = 0
    for endpoint in await list_endpoints(db, project_id):
        if event not in endpoint.events:
            continue
        body = json.dumps(
            {"event": event, "project_id": project_id, "created_at": iso(now), "data": data},
            separators=(",", ":"),
            default=str,
        )
        db.add(
            WebhookDelivery(
                endpoint_id=endpoint.id,
                event=event,
                body=body,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
        queued += 1
    return queued


def _audit(
    db: AsyncSession,
    row: WebhookEndpoint,
    action: str,
    actor: Actor,
) -> None:
    db.add(
        AuditEvent(
            org_id=row.org_id,
            project_id=row.project_id,
            action=action,
            actor_user_id=actor.user_id,
            actor_key_id=actor.key_id,
            ip=actor.ip,
            user_agent=(actor.user_agent or "")[:400] or None,
            data={"webhook_id": row.id, "url": row.url, "events": list(row.events)},
            created_at=utcnow(),
        )
    )
