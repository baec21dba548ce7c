"""Knowledge snippets: what `generate` answers from."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import AfterValidator

from keyplane.api.deps import MAX_ID, ProjectId, RuntimeDep, require
from keyplane.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor
from keyplane.api.schemas import errors_doc, storable
from keyplane.api.schemas_batches import BatchResult, SnippetBatch
from keyplane.api.schemas_knowledge import SnippetCreate, SnippetOut, SnippetPage, SnippetUpdate
from keyplane.domain.permissions import Permission
from keyplane.services import batches, snippets
from keyplane.services.auth import Principal

router = APIRouter(prefix="/v1/projects/{project_id}/snippets", tags=["knowledge"])

SnippetId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("", response_model=SnippetPage, responses=errors_doc(401, 403, 422))
async def list_snippets(
    project_id: ProjectId,
    rt: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200), AfterValidator(storable)] = None,
    data_provider_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    principal: Principal = require(Permission.KNOWLEDGE_READ),
) -> dict[str, Any]:
    """Newest first; `data_provider_id` keeps those one provider's sync made."""
    async with rt.sessions() as db:
        items, last = await snippets.page(
            db,
            project_id,
            principal.mode,
            limit=limit,
            after_id=decode_cursor(cursor),
            provider_id=data_provider_id,
        )
    return {"data": items, "next_cursor": encode_cursor(last)}


@router.post("/batch", response_model=BatchResult, responses=errors_doc(401, 403, 413, 422))
async def upsert_snippets_batch(
    project_id: ProjectId,
    body: SnippetBatch,
    rt: RuntimeDep,
    principal: Principal = require(Permission.KNOWLEDGE_WRITE),
) -> dict[str, Any]:
    """Create or update up to 1,000 snippets in one transaction: an item with an id updates
    that snippet, one with a url updates the hand-written snippet of that url, any other is
    created. One request toward the rate limit; a failing item refuses the whole batch."""
    items = [item.model_dump(exclude_unset=True) for item in body.items]
    async with rt.transaction() as db:
        return await batches.upsert_snippets(db, project_id, principal.mode, items)


@router.get("/{snippet_id}", response_model=SnippetOut, responses=errors_doc(401, 403, 404))
async def get_snippet(
    project_id: ProjectId,
    snippet_id: SnippetId,
    rt: RuntimeDep,
    principal: Principal = require(Permission.KNOWLEDGE_READ),
) -> dict[str, Any]:
    async with rt.sessions() as db:
        return await snippets.get(db, project_id, principal.mode, snippet_id)


@router.post("", status_code=201, response_model=SnippetOut, responses=errors_doc(401, 403, 422))
async def create_snippet(
    project_id: ProjectId,
    body: SnippetCreate,
    rt: RuntimeDep,
    principal: Principal = require(Permission.KNOWLEDGE_WRITE),
) -> dict[str, Any]:
    async with rt.transaction() as db:
        return await snippets.create(
            db, project_id, principal.mode, title=body.title, content=body.content, url=body.url
        )


@router.patch("/{snippet_id}", response_model=SnippetOut, responses=errors_doc(401, 403, 404, 422))
async def update_snippet(
    project_id: ProjectId,
    snippet_id: SnippetId,
    body: SnippetUpdate,
    rt: RuntimeDep,
    principal: Principal = require(Permission.KNOWLEDGE_WRITE),
) -> dict[str, Any]:
    async with rt.transaction() as db:
        return await snippets.update(
            db, project_id, principal.mode, snippet_id, body.model_dump(exclude_unset=True)
        )


@router.delete(
    "/{snippet_id}",
    status_code=204,
    responses=errors_doc(401, 403, 404),
)
async def delete_snippet(
    project_id: ProjectId,
    snippet_id: SnippetId,
    rt: RuntimeDep,
    principal: Principal = require(Permission.KNOWLEDGE_WRITE),
) -> Response:
    async with rt.transaction() as db:
        await snippets.delete(db, project_id, principal.mode, snippet_id)
    return Response(status_code=204)
