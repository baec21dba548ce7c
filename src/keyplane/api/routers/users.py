"""End users (userpool): list, show, and upsert by the platform's external id."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import AfterValidator

from keyplane.api.deps import ProjectId, RuntimeDep, require
from keyplane.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor
from keyplane.api.schemas import errors_doc, storable
from keyplane.api.schemas_batches import BatchResult, UserBatch
from keyplane.api.schemas_users import EndUserOut, EndUserPage, EndUserUpsert
from keyplane.domain.permissions import Permission
from keyplane.services import batches, end_users
from keyplane.services.auth import Principal

router = APIRouter(prefix="/v1/projects/{project_id}/users", tags=["users"])

# `:path`: an external id may hold "/" (CRM ids like "acct/42"; POST /conversations takes any
# user_id), sent escaped as %2F, which the server decodes before routing.
ExternalId = Annotated[
    str,
    Path(min_length=1, max_length=200, description="Your id for the user"),
    AfterValidator(storable),
]


@router.get("", response_model=EndUserPage, responses=errors_doc(401, 403, 422))
async def list_users(
    project_id: ProjectId,
    rt: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200), AfterValidator(storable)] = None,
    email: Annotated[str | None, Query(max_length=320), AfterValidator(storable)] = None,
    principal: Principal = require(Permission.USERPOOL_READ),
) -> dict[str, Any]:
    """Newest first."""
    async with rt.sessions() as db:
        items, last = await end_users.page(
            db, project_id, principal.mode, limit=limit, after_id=decode_cursor(cursor), email=email
        )
    return {"data": items, "next_cursor": encode_cursor(last)}


@router.post(
    "/batch",
    response_model=BatchResult,
    responses=errors_doc(401, 403, 413, 422),
)
async def upsert_users_batch(
    project_id: ProjectId,
    body: UserBatch,
    rt: RuntimeDep,
    principal: Principal = require(Permission.USERPOOL_UPDATE),
) -> dict[str, Any]:
    """Create or update up to 1,000 users in one transaction (each as PATCH /users/{id});
    one request toward the rate limit. A failing item refuses the whole batch, naming its
    index and field."""
    items = [item.model_dump(exclude_unset=True) for item in body.items]
    async with rt.transaction() as db:
        return await batches.upsert_users(db, project_id, principal.mode, items)


@router.get(
    "/{external_id:path}", response_model=EndUserOut, responses=errors_doc(401, 403, 404, 422)
)
async def get_user(
    project_id: ProjectId,
    external_id: ExternalId,
    rt: RuntimeDep,
    principal: Principal = require(Permission.USERPOOL_READ),
) -> dict[str, Any]:
    async with rt.sessions() as db:
        return await end_users.get(db, project_id, principal.mode, external_id)


@router.patch(
    "/{external_id:path}",
    response_model=EndUserOut,
    responses={201: {"model": EndUserOut, "description": "Created"}, **errors_doc(401, 403, 422)},
)
async def upsert_user(
    project_id: ProjectId,
    external_id: ExternalId,
    body: EndUserUpsert,
    rt: RuntimeDep,
    response: Response,
    principal: Principal = require(Permission.USERPOOL_UPDATE),
) -> dict[str, Any]:
    """Create the user or update the fields sent (200 updated, 201 created); a null clears a
    field, and `external_attributes` is merged into the stored attributes, not replaced."""
    async with rt.transaction() as db:
        user, created = await end_users.upsert(
            db, project_id, principal.mode, external_id, body.model_dump(exclude_unset=True)
        )
    if created:
        response.status_code = 201
    return user
