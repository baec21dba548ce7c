"""Alerts of a project (issue 7): listed with api_key:read, acknowledged with api_key:write,
by a dashboard session or a user key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from keyplane.api.deps import MAX_ID, ActorDep, ProjectId, RuntimeDep
from keyplane.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor
from keyplane.api.schemas import errors_doc
from keyplane.api.security_schemas import AlertOut, AlertPage
from keyplane.domain.permissions import Permission
from keyplane.services import alerts

router = APIRouter(tags=["alerts"])
_ERRORS = errors_doc(401, 403, 404, 422)
AlertId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/v1/projects/{project_id}/alerts", response_model=AlertPage, responses=_ERRORS)
async def list_alerts(
    project_id: ProjectId,
    rt: RuntimeDep,
    actor: ActorDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    unacknowledged: bool = False,
) -> dict[str, Any]:
    """Security alerts of the project, newest first: anomalies, failed-authentication
    bursts, leaked keys."""
    async with rt.sessions() as db:
        await rt.keys.require(db, actor, project_id, Permission.API_KEY_READ)
        items, last = await alerts.list_alerts(
            db,
            project_id,
            limit=limit,
            before_id=decode_cursor(cursor),
            unacknowledged=unacknowledged,
        )
    return {"data": items, "next_cursor": encode_cursor(last)}


@router.post(
    "/v1/projects/{project_id}/alerts/{alert_id}/acknowledge",
    response_model=AlertOut,
    responses=_ERRORS,
)
async def acknowledge_alert(
    project_id: ProjectId, alert_id: AlertId, rt: RuntimeDep, actor: ActorDep
) -> dict[str, Any]:
    """Mark an alert as handled; the first acknowledgement (who and when) stands."""
    async with rt.transaction() as db:
        await rt.keys.require(db, actor, project_id, Permission.API_KEY_WRITE)
        return await alerts.acknowledge(db, project_id, alert_id, actor.user_id)
