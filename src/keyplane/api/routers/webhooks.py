"""Webhook endpoints of a project and their delivery log (issue 7), managed with
webhook:read / webhook:write by a dashboard session or a user key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from keyplane.api.deps import MAX_ID, ActorDep, ProjectId, RuntimeDep
from keyplane.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor
from keyplane.api.schemas import errors_doc
from keyplane.api.security_schemas import (
    DeliveryPage,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
)
from keyplane.domain.permissions import Permission
from keyplane.services import webhooks

router = APIRouter(tags=["webhooks"])
_ERRORS = errors_doc(401, 403, 404, 422)
_HOOKS = "/v1/projects/{project_id}/webhooks"
WebhookId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get(_HOOKS, response_model=WebhookList, responses=_ERRORS)
async def list_webhooks(project_id: ProjectId, rt: RuntimeDep, actor: ActorDep) -> dict[str, Any]:
    async with rt.sessions() as db:
        await rt.keys.require(db, actor, project_id, Permission.WEBHOOK_READ)
        rows = await webhooks.list_endpoints(db, project_id)
    return {"data": [webhooks.describe(r) for r in rows]}


@router.post(_HOOKS, status_code=201, response_model=WebhookCreated, responses=_ERRORS)
async def create_webhook(
    project_id: ProjectId, body: WebhookCreate, rt: RuntimeDep, actor: ActorDep
) -> dict[str, Any]:
    """Subscribe a URL to the project's alerts and expiry reminders. The response holds the
    signing secret, shown this once: verify deliveries with it (see
    keyplane.webhooks.verify_signature)."""
    async with rt.transaction() as db:
        await rt.keys.require(db, actor, project_id, Permission.WEBHOOK_WRITE)
        row, secret = await webhooks.create(
            db, rt.keyring, project_id, body.url, list(body.events or []) or None, actor
        )
        return webhooks.describe(row) | {"secret": secret}


@router.delete(
    _HOOKS + "/{webhook_id}", status_code=204, response_class=Response, responses=_ERRORS
)
async def delete_webhook(
    project_id: ProjectId, webhook_id: WebhookId, rt: RuntimeDep, actor: ActorDep
) -> Response:
    async with rt.transaction() as db:
        await rt.keys.require(db, actor, project_id, Permission.WEBHOOK_WRITE)
        await webhooks.remove(db, project_id, webhook_id, actor)
    return Response(status_code=204)


@router.get(_HOOKS + "/{webhook_id}/deliveries", response_model=DeliveryPage, responses=_ERRORS)
async def list_deliveries(
    project_id: ProjectId,
    webhook_id: WebhookId,
    rt: RuntimeDep,
    actor: ActorDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Every delivery to the endpoint, newest first: status, HTTP status code, attempts,
    the last error and when the next attempt is due."""
    async with rt.sessions() as db:
        await rt.keys.require(db, actor, project_id, Permission.WEBHOOK_READ)
        items, last = await webhooks.deliveries(
            db, project_id, webhook_id, limit=limit, before_id=decode_cursor(cursor)
        )
    return {"data": items, "next_cursor": encode_cursor(last)}
