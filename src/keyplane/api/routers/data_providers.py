"""Data providers: sources of knowledge snippets, synced by a background job."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import AfterValidator

from keyplane.api.deps import MAX_ID, ProjectId, RuntimeDep, require
from keyplane.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor
from keyplane.api.schemas import errors_doc, storable
from keyplane.api.schemas_knowledge import DataProviderCreate, DataProviderOut, DataProviderPage
from keyplane.domain.permissions import Permission
from keyplane.services import data_providers
from keyplane.services.auth import Principal

router = APIRouter(prefix="/v1/projects/{project_id}/data-providers", tags=["knowledge"])

ProviderId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("", response_model=DataProviderPage, responses=errors_doc(401, 403, 422))
async def list_data_providers(
    project_id: ProjectId,
    rt: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200), AfterValidator(storable)] = None,
    principal: Principal = require(Permission.KNOWLEDGE_READ),
) -> dict[str, Any]:
    """Oldest first, each with its latest sync's status and counts."""
    async with rt.sessions() as db:
        items, last = await data_providers.page(
            db, project_id, principal.mode, limit=limit, after_id=decode_cursor(cursor)
        )
    return {"data": items, "next_cursor": encode_cursor(last)}


@router.get(
    "/{data_provider_id}", response_model=DataProviderOut, responses=errors_doc(401, 403, 404)
)
async def get_data_provider(
    project_id: ProjectId,
    data_provider_id: ProviderId,
    rt: RuntimeDep,
    principal: Principal = require(Permission.KNOWLEDGE_READ),
) -> dict[str, Any]:
    """One provider with its latest sync's status and counts: what a script that started a
    sync polls until `sync.status` is succeeded or failed."""
    async with rt.sessions() as db:
        return await data_providers.get(db, project_id, principal.mode, data_provider_id)


@router.post(
    "", status_code=201, response_model=DataProviderOut, responses=errors_doc(401, 403, 422)
)
async def create_data_provider(
    project_id: ProjectId,
    body: DataProviderCreate,
    rt: RuntimeDep,
    principal: Principal = require(Permission.KNOWLEDGE_WRITE),
) -> dict[str, Any]:
    """`directory`: `{"path": "/abs/dir"}` inside KEYPLANE_DATA_PROVIDER_ROOTS (default: the
    data directory); `urls`: `{"urls": ["https://…"]}`. Nothing is read until a sync."""
    async with rt.transaction() as db:
        return await data_providers.create(
            db,
            project_id,
            principal.mode,
            name=body.name,
            type_=body.type,
            config=body.config.model_dump(),
            roots=rt.settings.knowledge_roots,
        )


@router.post(
    "/{data_provider_id}/sync",
    status_code=202,
    response_model=DataProviderOut,
    responses=errors_doc(401, 403, 404, 422),
)
async def sync_data_provider(
    project_id: ProjectId,
    data_provider_id: ProviderId,
    rt: RuntimeDep,
    principal: Principal = require(Permission.KNOWLEDGE_WRITE),
) -> dict[str, Any]:
    """Start a sync in the background (202): the provider's snippets are made to match its
    source — new files or URLs become snippets, changed ones are updated, vanished ones
    removed. Poll GET /data-providers/{id} for `sync.status`. While a sync is pending or
    running, a new request joins it instead of starting another."""
    async with rt.transaction() as db:
        provider, start = await data_providers.request_sync(
            db, project_id, principal.mode, data_provider_id
        )
    if start:  # after the commit, so that the job sees the pending status
        rt.jobs.spawn(
            f"sync data provider {data_provider_id}",
            data_providers.run_sync(rt.sessions, rt.settings, data_provider_id),
        )
    return provider
