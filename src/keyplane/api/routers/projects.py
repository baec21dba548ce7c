from __future__ import annotations

from fastapi import APIRouter

from keyplane.adapters.sql.repositories import aware
from keyplane.api.deps import ProjectId, RuntimeDep, require
from keyplane.api.schemas import ProjectOut, errors_doc
from keyplane.domain.permissions import Permission
from keyplane.services import accounts
from keyplane.services.auth import Principal

router = APIRouter(tags=["projects"])


@router.get(
    "/v1/projects/{project_id}",
    response_model=ProjectOut,
    responses=errors_doc(401, 403, 404, 422),
)
async def get_project(
    project_id: ProjectId,
    rt: RuntimeDep,
    principal: Principal = require(Permission.PROJECT_READ),
) -> ProjectOut:
    async with rt.sessions() as db:
        project = await accounts.get_project(db, project_id)
    created = aware(project.created_at)
    assert created is not None
    return ProjectOut(
        id=project.id,
        org_id=project.org_id,
        name=project.name,
        mode=principal.mode,
        created_at=created,
    )
