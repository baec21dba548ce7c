"""Webhook subscriptions of a project and mode, and the outbox rows that deliver events to
them (issues 7 and 11). Sending happens in the background (`services/webhook_sender.py`);
here events are only written, in the transaction that produced them, so an event is queued
if and only if its change committed."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy import update as update_
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import Project, WebhookDelivery, WebhookEndpoint
from keyplane.adapters.sql.paging import keyset_page
from keyplane.adapters.sql.repositories import iso, utcnow
from keyplane.domain.errors import Conflict, NotFound, ValidationFailed
from keyplane.domain.keyformat import Mode
from keyplane.services.crypto import Keyring
from keyplane.services.keys import Actor
from keyplane.services.webhook_urls import Resolver, destination_refusal, system_resolve

# The events a subscription can choose; the API's request bodies take the same Literal, so the
# list lives here once.
EventName = Literal[
    "conversation.created",
    "message.created",
    "conversation.resolved",
    "conversation.labeled",
    "user.updated",
    "snippet.changed",
    "data_provider.sync.completed",
    "data_provider.sync.failed",
    "api_key.created",
    "api_key.deleted",
    "api_key.rotated",
    "api_key.expiring",
    "alert.raised",
]
EVENTS: tuple[str, ...] = get_args(EventName)
# Events whose payload carries end users' personal data (names, emails, what they wrote): a
# subscription to any of them belongs in the compliance inventory.
PII_EVENTS = frozenset(
    {
        "conversation.created",
        "message.created",
        "conversation.resolved",
        "conversation.labeled",
        "user.updated",
    }
)
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
MAX_ENDPOINTS_PER_PROJECT = 20


def describe(row: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": row.id,
        "project_id": row.project_id,
        "mode": row.mode,
        "url": row.url,
        "events": list(row.events),
        "description": row.description,
        "enabled": row.disabled_at is None,
        "disabled_at": iso(row.disabled_at),
        "disabled_reason": row.disabled_reason,
        "created_at": iso(row.created_at),
        "created_by": row.created_by,
        "updated_at": iso(row.updated_at or row.created_at),
        "last_delivered_at": iso(row.last_delivered_at),
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
        "replay_of": row.replay_of,
    }


def _sealing_context(endpoint_id: int) -> str:
    # Associated data binding the sealed secret to its row (see Keyring.encrypt).
    return f"webhook:{endpoint_id}"


def signing_secret(keyring: Keyring, row: WebhookEndpoint) -> str:
    return keyring.decrypt(row.secret_version, row.secret_sealed, _sealing_context(row.id))


def _check_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in range
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and len(url) <= 2000
    except ValueError:
        valid = False
    if not valid or parts.username is not None:
        raise ValidationFailed(
            "The webhook URL must be an http:// or https:// URL with a host (and no user "
            "name or password), e.g. https://example.com/keyplane-events.",
            details=[{"loc": ["body", "url"], "msg": "invalid URL"}],
        )
    return url


@dataclass(frozen=True)
class Destinations:
    """What the URL check needs: whether live subscriptions may reach private networks
    (KEYPLANE_WEBHOOK_ALLOW_PRIVATE) and how names are resolved (replaced in tests)."""

    allow_private: bool = False
    resolve: Resolver = system_resolve

    def allows_private(self, mode: str) -> bool:
        return self.allow_private or mode == Mode.TEST


async def _check_destination(url: str, mode: str, destinations: Destinations) -> str:
    url = _check_url(url)
    reason = await destination_refusal(
        url, allow_private=destinations.allows_private(mode), resolve=destinations.resolve
    )
    if reason is not None:
        raise ValidationFailed(
            f"Webhooks of live mode are not sent to private networks: {reason}. Use a public "
            "https:// URL; a receiver on your own machine works for test-mode subscriptions "
            '(sk_test_ keys, or mode "test"), or an operator can allow private receivers '
            "with KEYPLANE_WEBHOOK_ALLOW_PRIVATE=true.",
            details=[{"loc": ["body", "url"], "msg": reason}],
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
    *,
    mode: str = Mode.LIVE,
    description: str | None = None,
    destinations: Destinations | None = None,
) -> tuple[WebhookEndpoint, str]:
    """A new subscription and its signing secret (returned once; stored sealed)."""
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
    now = utcnow()
    row = WebhookEndpoint(
        org_id=project.org_id,
        project_id=project_id,
        mode=str(mode),
        url=await _check_destination(url, mode, destinations or Destinations()),
        events=_check_events(events),
        description=description,
        secret_version=0,
        secret_sealed=b"",
        created_at=now,
        updated_at=now,
        created_by=actor.user_id,
    )
    db.add(row)
    await db.flush()  # the id is the sealing context
    row.secret_version, row.secret_sealed = keyring.encrypt(secret, _sealing_context(row.id))
    _audit(db, row, "webhook.created", actor)
    return row, secret


async def list_endpoints(
    db: AsyncSession, project_id: int, mode: str | None = None
) -> list[WebhookEndpoint]:
    """The project's subscriptions, of one mode when `mode` is given."""
    query = select(WebhookEndpoint).where(WebhookEndpoint.project_id == project_id)
    if mode is not None:
        query = query.where(WebhookEndpoint.mode == str(mode))
    rows = await db.scalars(query.order_by(WebhookEndpoint.id))
    return list(rows.all())


async def get_endpoint(
    db: AsyncSession, project_id: int, webhook_id: int, mode: str | None = None
) -> WebhookEndpoint:
    """One subscription; with `mode`, only one of that mode (a key never sees the other's)."""
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.id == webhook_id, WebhookEndpoint.project_id == project_id
    )
    if mode is not None:
        query = query.where(WebhookEndpoint.mode == str(mode))
    row = await db.scalar(query)
    if row is None:
        where = f" ({mode} mode)" if mode is not None else ""
        raise NotFound(f"No webhook {webhook_id} in project {project_id}{where}.")
    return row


@dataclass(frozen=True)
class Changes:
    """A PATCH: only the fields in `sent` change."""

    sent: frozenset[str]
    url: str | None = None
    events: list[str] | None = None
    description: str | None = None
    enabled: bool | None = None


async def update(
    db: AsyncSession,
    project_id: int,
    webhook_id: int,
    changes: Changes,
    actor: Actor,
    *,
    mode: str | None = None,
    destinations: Destinations | None = None,
) -> WebhookEndpoint:
    """Change the URL, events, description, or enable / disable it. Enabling a subscription
    that was disabled after failures sends the deliveries still pending again."""
    row = await get_endpoint(db, project_id, webhook_id, mode)
    if "url" in changes.sent and changes.url is not None:
        row.url = await _check_destination(changes.url, row.mode, destinations or Destinations())
    if "events" in changes.sent:
        row.events = _check_events(changes.events)
    if "description" in changes.sent:
        row.description = changes.description
    if "enabled" in changes.sent and changes.enabled is not None:
        if changes.enabled and row.disabled_at is not None:
            row.disabled_at, row.disabled_reason = None, None
        elif not changes.enabled and row.disabled_at is None:
            row.disabled_at, row.disabled_reason = utcnow(), "disabled by a user"
    row.updated_at = utcnow()
    _audit(db, row, "webhook.updated", actor)
    return row


async def replay(
    db: AsyncSession,
    project_id: int,
    webhook_id: int,
    delivery_id: int,
    actor: Actor,
    *,
    mode: str | None = None,
) -> WebhookDelivery:
    """Queue the same event body again as a new delivery (freshly signed when sent), e.g.
    after fixing a receiver. The original stays in the log as it was."""
    endpoint = await get_endpoint(db, project_id, webhook_id, mode)
    original = await db.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint.id
        )
    )
    if original is None:
        raise NotFound(f"No delivery {delivery_id} of webhook {webhook_id}.")
    if endpoint.disabled_at is not None:
        raise Conflict(
            f'Webhook {webhook_id} is disabled; enable it (PATCH {{"enabled": true}}) '
            "before replaying deliveries."
        )
    now = utcnow()
    row = WebhookDelivery(
        endpoint_id=endpoint.id,
        event=original.event,
        body=original.body,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        replay_of=original.id,
    )
    db.add(row)
    await db.flush()
    _audit(db, endpoint, "webhook.replayed", actor, {"delivery_id": original.id})
    return row


async def disable_after_failures(db: AsyncSession, endpoint_id: int, reason: str) -> bool:
    """Switch a subscription off after sustained failure and leave a notice: an alert on the
    project (dashboard, alerts API) and an audit event. True when this call disabled it."""
    from keyplane.services.alerts import AlertSpec, raise_alert  # alerts enqueue webhooks

    now = utcnow()
    changed = await db.execute(
        update_(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.disabled_at.is_(None))
        .values(disabled_at=now, disabled_reason=reason[:500], updated_at=now)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    _forget(db)
    row = await db.get(WebhookEndpoint, endpoint_id)
    assert row is not None
    await raise_alert(
        db,
        AlertSpec(
            kind="webhook_disabled",
            severity="high",
            message=(
                f"Webhook {row.id} ({row.url[:200]}) was disabled: {reason[:200]}. Fix the "
                "receiver, enable the webhook again and replay the failed deliveries."
            ),
            window=iso(now) or "",
            org_id=row.org_id,
            project_id=row.project_id,
            subject=f"webhook:{row.id}",
            mode=row.mode,
            details={"webhook_id": row.id, "url": row.url, "reason": reason[:500]},
        ),
    )
    return True


async def remove(
    db: AsyncSession,
    project_id: int,
    webhook_id: int,
    actor: Actor,
    *,
    mode: str | None = None,
) -> None:
    """Delete an endpoint; its pending deliveries go with it (nothing more is sent)."""
    row = await get_endpoint(db, project_id, webhook_id, mode)
    _audit(db, row, "webhook.deleted", actor)
    await db.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == row.id))
    await db.delete(row)


async def deliveries(
    db: AsyncSession,
    project_id: int,
    webhook_id: int,
    *,
    limit: int,
    before_id: int | None,
    mode: str | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    await get_endpoint(db, project_id, webhook_id, mode)
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == webhook_id)
    rows, last = await keyset_page(
        db, query, WebhookDelivery.id, limit=limit, after_id=before_id, newest_first=True
    )
    return [describe_delivery(r) for r in rows], last


async def enqueue(
    db: AsyncSession, project_id: int, event: str, data: dict[str, Any], mode: str = Mode.LIVE
) -> int:
    """Queue `event` for every enabled subscription of the project and mode that wants it;
    returns how many. The body is fixed here, so every retry sends (and signs) exactly the
    same bytes."""
    assert event in EVENTS, event
    now = utcnow()
    queued = 0
    for endpoint_id, events in await _subscribers(db, project_id, str(mode)):
        if event not in events:
            continue
        body = json.dumps(
            {
                "event": event,
                "project_id": project_id,
                "mode": str(mode),
                "created_at": iso(now),
                "data": data,
            },
            separators=(",", ":"),
            default=str,
        )
        db.add(
            WebhookDelivery(
                endpoint_id=endpoint_id,
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


_SUBSCRIBERS = "keyplane.webhook_subscribers"


async def _subscribers(
    db: AsyncSession, project_id: int, mode: str
) -> list[tuple[int, frozenset[str]]]:
    """The enabled subscriptions of a project and mode with their events, read once per
    session: a batch of a thousand changes costs one query here, not a thousand. Changing a
    subscription drops the session's copy (`_forget`)."""
    cache: dict[tuple[int, str], list[tuple[int, frozenset[str]]]] = db.info.setdefault(
        _SUBSCRIBERS, {}
    )
    found = cache.get((project_id, mode))
    if found is None:
        rows = await db.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.events).where(
                WebhookEndpoint.project_id == project_id,
                WebhookEndpoint.mode == mode,
                WebhookEndpoint.disabled_at.is_(None),
            )
        )
        found = [(endpoint_id, frozenset(events)) for endpoint_id, events in rows.all()]
        cache[(project_id, mode)] = found
    return found


def _forget(db: AsyncSession) -> None:
    db.info.pop(_SUBSCRIBERS, None)


def _audit(
    db: AsyncSession,
    row: WebhookEndpoint,
    action: str,
    actor: Actor,
    extra: dict[str, Any] | None = None,
) -> None:
    _forget(db)  # every change of a subscription is audited: drop the session's copy
    data = {"webhook_id": row.id, "url": row.url, "events": list(row.events)} | (extra or {})
    db.add(actor.audit_event(action, data, org_id=row.org_id, project_id=row.project_id))
