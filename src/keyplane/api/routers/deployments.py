from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AfterValidator

from keyplane.api.deps import ProjectId, RuntimeDep, require
from keyplane.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor
from keyplane.api.platform_schemas import DeploymentCreate, DeploymentOut, DeploymentPage
from keyplane.api.schemas import errors_doc, storable
from keyplane.domain.permissions import Permission
from keyplane.services import deployments
from keyplane.services.auth import Principal

router = APIRouter(prefix="/v1/projects/{project_id}/deployments", tags=["deployments"])


@router.get("", response_model=DeploymentPage, responses=errors_doc(401, 403))
async def list_deployments(
    project_id: ProjectId,
    rt: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200), AfterValidator(storable)] = None,
    principal: Principal = require(Permission.DEPLOYMENT_READ),
) -> dict[str, Any]:
    async with rt.sessions() as db:
        items, last = await deployments.page(
            db, project_id, principal.mode, limit=limit, after_id=decode_cursor(cursor)
        )
    return {"data": items, "next_cursor": encode_cursor(last)}


@router.post("", status_code=201, response_model=DeploymentOut, responses=errors_doc(401, 403))
async def create_deployment(
    project_id: ProjectId,
    body: DeploymentCreate,
    rt: RuntimeDep,
    principal: Principal = require(Permission.DEPLOYMENT_UPDATE),
) -> dict[str, Any]:
    """Deploys the agent on a channel (web, slack, whatsapp, api) with its configuration."""
    async with rt.transaction() as db:
        return await deployments.create(
            db,
            project_id,
            principal.mode,
            channel=body.channel,
            name=body.name,
            config=body.config,
            status=body.status,
        )
