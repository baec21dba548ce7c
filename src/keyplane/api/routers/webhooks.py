"""Webhook subscriptions of a project and mode, and their delivery log (issues 7 and 11):
webhook:read / webhook:write, held by a key (project or user; the subscription takes the
key's mode) or by a signed-in dashboard user (either mode)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from keyplane.api.deps import MAX_ID, ProjectCaller, ProjectId, RuntimeDep, caller
from keyplane.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor
from keyplane.api.schemas import errors_doc
from keyplane.api.security_schemas import (
    DeliveryOut,
    DeliveryPage,
    ModeName,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
    WebhookUpdate,
)
from keyplane.domain.errors import ValidationFailed
from keyplane.domain.keyformat import Mode
from keyplane.domain.permissions import Permission
from keyplane.runtime import Runtime
from keyplane.services import webhooks

router = APIRouter(tags=["webhooks"])
_ERRORS = errors_doc(401, 403, 404, 422)
_HOOKS = "/v1/projects/{project_id}/webhooks"
WebhookId = Annotated[int, Path(ge=1, le=MAX_ID)]
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _destinations(rt: Runtime) -> webhooks.Destinations:
    return rt.webhooks.destinations


@router.get(_HOOKS, response_model=WebhookList, responses=_ERRORS)
async def list_webhooks(
    project_id: ProjectId,
    rt: RuntimeDep,
    mode: Annotated[ModeName | None, Query(description="Only this mode (sessions)")] = None,
    who: ProjectCaller = caller(Permission.WEBHOOK_READ),
) -> dict[str, Any]:
    """The subscriptions of the caller's mode (a key's), or of both modes for a session."""
    async with rt.sessions() as db:
        rows = await webhooks.list_endpoints(db, project_id, who.mode or mode)
    return {"data": [webhooks.describe(r) for r in rows]}


@router.post(_HOOKS, status_code=201, response_model=WebhookCreated, responses=_ERRORS)
async def create_webhook(
    project_id: ProjectId,
    body: WebhookCreate,
    rt: RuntimeDep,
    who: ProjectCaller = caller(Permission.WEBHOOK_WRITE),
) -> dict[str, Any]:
    """Subscribe a URL to the project's events of one mode. The response holds the signing
    secret, shown this once: verify deliveries with it (keyplane.webhooks.verify_signature,
    or the recipe in the README)."""
    if who.mode is not None and body.mode is not None and body.mode != who.mode:
        raise ValidationFailed(
            f"An sk_{who.mode}_ key subscribes to {who.mode}-mode events only; leave out "
            f"mode or use an sk_{body.mode}_ key.",
            details=[{"loc": ["body", "mode"], "msg": "must match the key's mode"}],
        )
    mode = who.mode or Mode(body.mode or Mode.LIVE)
    async with rt.transaction() as db:
        row, secret = await webhooks.create(
            db,
            rt.keyring,
            project_id,
            body.url,
            list(body.events or []) or None,
            who.actor,
            mode=mode,
            description=body.description,
            destinations=_destinations(rt),
        )
        return webhooks.describe(row) | {"secret": secret}


@router.get(_HOOKS + "/{webhook_id}", response_model=WebhookOut, responses=_ERRORS)
async def get_webhook(
    project_id: ProjectId,
    webhook_id: WebhookId,
    rt: RuntimeDep,
    who: ProjectCaller = caller(Permission.WEBHOOK_READ),
) -> dict[str, Any]:
    async with rt.sessions() as db:
        row = await webhooks.get_endpoint(db, project_id, webhook_id, who.mode)
    return webhooks.describe(row)


@router.patch(_HOOKS + "/{webhook_id}", response_model=WebhookOut, responses=_ERRORS)
async def update_webhook(
    project_id: ProjectId,
    webhook_id: WebhookId,
    body: WebhookUpdate,
    rt: RuntimeDep,
    who: ProjectCaller = caller(Permission.WEBHOOK_WRITE),
) -> dict[str, Any]:
    """Change the URL, events or description, pause it (`enabled: false`) or enable it again
    after it was disabled for failing."""
    sent = body.model_fields_set
    changes = webhooks.Changes(
        sent=frozenset(sent),
        url=body.url,
        events=list(body.events) if body.events is not None else None,
        description=body.description,
        enabled=body.enabled,
    )
    async with rt.transaction() as db:
        row = await webhooks.update(
            db,
            project_id,
            webhook_id,
            changes,
            who.actor,
            mode=who.mode,
            destinations=_destinations(rt),
        )
        return webhooks.describe(row)


@router.delete(
    _HOOKS + "/{webhook_id}", status_code=204, response_class=Response, responses=_ERRORS
)
async def delete_webhook(
    project_id: ProjectId,
    webhook_id: WebhookId,
    rt: RuntimeDep,
    who: ProjectCaller = caller(Permission.WEBHOOK_WRITE),
) -> Response:
    async with rt.transaction() as db:
        await webhooks.remove(db, project_id, webhook_id, who.actor, mode=who.mode)
    return Response(status_code=204)


@router.get(_HOOKS + "/{webhook_id}/deliveries", response_model=DeliveryPage, responses=_ERRORS)
async def list_deliveries(
    project_id: ProjectId,
    webhook_id: WebhookId,
    rt: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    who: ProjectCaller = caller(Permission.WEBHOOK_READ),
) -> dict[str, Any]:
    """Every delivery to the webhook, newest first: status, the receiver's HTTP status code,
    attempts, the last error and when the next attempt is due."""
    async with rt.sessions() as db:
        items, last = await webhooks.deliveries(
            db,
            project_id,
            webhook_id,
            limit=limit,
            before_id=decode_cursor(cursor),
            mode=who.mode,
        )
    return {"data": items, "next_cursor": encode_cursor(last)}


@router.post(
    _HOOKS + "/{webhook_id}/deliveries/{delivery_id}/replay",
    status_code=202,
    response_model=DeliveryOut,
    responses=errors_doc(401, 403, 404, 409, 422),
)
async def replay_delivery(
    project_id: ProjectId,
    webhook_id: WebhookId,
    delivery_id: DeliveryId,
    rt: RuntimeDep,
    who: ProjectCaller = caller(Permission.WEBHOOK_WRITE),
) -> dict[str, Any]:
    """Send a delivery's event again (same body, a fresh signature) as a new delivery,
    queued at once; e.g. after the receiver was fixed."""
    async with rt.transaction() as db:
        row = await webhooks.replay(
            db, project_id, webhook_id, delivery_id, who.actor, mode=who.mode
        )
        return webhooks.describe_delivery(row)
