"""A project's own permissions (issue 10): names of the organization's API that its keys can
carry next to the built-in catalog. Managed like keys: a session or a user key, api_key:read
to list and api_key:write to change."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from keyplane.api.deps import ActorDep, ProjectId, RuntimeDep
from keyplane.api.schemas import errors_doc
from keyplane.api.schemas_verify import (
    CustomPermissionCreate,
    CustomPermissionList,
    CustomPermissionOut,
)
from keyplane.services import custom_permissions as cp

router = APIRouter(tags=["custom permissions"])

_PATH = "/v1/projects/{project_id}/permissions"
_ERRORS = errors_doc(400, 401, 403, 404, 409, 422)
Name = Annotated[str, Path(min_length=1, max_length=64, description="resource:action")]


@router.get(_PATH, response_model=CustomPermissionList, responses=_ERRORS)
async def list_custom_permissions(
    project_id: ProjectId, rt: RuntimeDep, actor: ActorDep
) -> dict[str, Any]:
    """The project's own permissions, grantable to its project keys."""
    async with rt.sessions() as db:
        rows = await cp.list_permissions(db, rt.keys, actor, project_id)
    return {"data": [cp.describe(r) for r in rows]}


@router.post(_PATH, status_code=201, response_model=CustomPermissionOut, responses=_ERRORS)
async def register_custom_permission(
    project_id: ProjectId, body: CustomPermissionCreate, rt: RuntimeDep, actor: ActorDep
) -> dict[str, Any]:
    """Register a permission of your own API (`resource:action`); built-in names and
    resources are reserved."""
    async with rt.transaction() as db:
        row = await cp.register(
            db, rt.keys, actor, project_id, body.name, body.description, body.implies
        )
    return cp.describe(row)


@router.delete(_PATH + "/{name}", status_code=204, responses=_ERRORS)
async def delete_custom_permission(
    project_id: ProjectId, name: Name, rt: RuntimeDep, actor: ActorDep
) -> Response:
    """Delete it, and take it from every key of the project at once."""
    async with rt.transaction() as db:
        await cp.delete(db, rt.keys, actor, project_id, name)
    return Response(status_code=204)
