from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import AfterValidator

from keyplane.api.deps import MAX_ID, ProjectId, RuntimeDep, require
from keyplane.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor
from keyplane.api.platform_schemas import (
    RowOut,
    RowPage,
    RowWrite,
    TableCreate,
    TableOut,
    TablePage,
)
from keyplane.api.schemas import errors_doc, storable
from keyplane.api.schemas_batches import BatchResult, RowBatch
from keyplane.domain.permissions import Permission
from keyplane.services import batches, tables
from keyplane.services.auth import Principal

router = APIRouter(prefix="/v1/projects/{project_id}/tables", tags=["tables"])

TableId = Annotated[int, Path(ge=1, le=MAX_ID)]
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=200), AfterValidator(storable)]


@router.get("", response_model=TablePage, responses=errors_doc(401, 403))
async def list_tables(
    project_id: ProjectId,
    rt: RuntimeDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    principal: Principal = require(Permission.TABLE_READ),
) -> dict[str, Any]:
    async with rt.sessions() as db:
        items, last = await tables.page(
            db, project_id, principal.mode, limit=limit, after_id=decode_cursor(cursor)
        )
    return {"data": items, "next_cursor": encode_cursor(last)}


@router.post("", status_code=201, response_model=TableOut, responses=errors_doc(401, 403, 409))
async def create_table(
    project_id: ProjectId,
    body: TableCreate,
    rt: RuntimeDep,
    principal: Principal = require(Permission.TABLE_WRITE),
) -> dict[str, Any]:
    """A table with typed columns (text, number, boolean, date); names are unique per project."""
    columns = [{"name": c.name, "type": c.type.value} for c in body.columns]
    async with rt.transaction() as db:
        return await tables.create(db, project_id, principal.mode, body.name, columns)


@router.get("/{table_id}/rows", response_model=RowPage, responses=errors_doc(401, 403, 404))
async def list_rows(
    project_id: ProjectId,
    table_id: TableId,
    rt: RuntimeDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    filter: Annotated[
        str | None,
        Query(max_length=300, description="column:value, an equality test"),
        AfterValidator(storable),
    ] = None,
    principal: Principal = require(Permission.TABLE_READ),
) -> dict[str, Any]:
    async with rt.sessions() as db:
        items, last = await tables.rows(
            db,
            project_id,
            principal.mode,
            table_id,
            limit=limit,
            after_id=decode_cursor(cursor),
            filter_text=filter,
        )
    return {"data": items, "next_cursor": encode_cursor(last)}


@router.post(
    "/{table_id}/rows", status_code=201, response_model=RowOut, responses=errors_doc(401, 403, 404)
)
async def add_row(
    project_id: ProjectId,
    table_id: TableId,
    body: RowWrite,
    rt: RuntimeDep,
    principal: Principal = require(Permission.TABLE_WRITE),
) -> dict[str, Any]:
    async with rt.transaction() as db:
        return await tables.add_row(db, project_id, principal.mode, table_id, body.values)


@router.post(
    "/{table_id}/rows/batch",
    response_model=BatchResult,
    responses=errors_doc(401, 403, 404, 413, 422),
)
async def upsert_rows_batch(
    project_id: ProjectId,
    table_id: TableId,
    body: RowBatch,
    rt: RuntimeDep,
    principal: Principal = require(Permission.TABLE_WRITE),
) -> dict[str, Any]:
    """Add or change up to 1,000 rows in one transaction: an item with an id changes the
    cells given, one without is added. One request toward the rate limit; a failing item
    refuses the whole batch, naming its index and field."""
    items = [item.model_dump(exclude_unset=True) for item in body.items]
    async with rt.transaction() as db:
        return await batches.upsert_rows(db, project_id, principal.mode, table_id, items)


@router.patch(
    "/{table_id}/rows/{row_id}", response_model=RowOut, responses=errors_doc(401, 403, 404)
)
async def update_row(
    project_id: ProjectId,
    table_id: TableId,
    row_id: RowId,
    body: RowWrite,
    rt: RuntimeDep,
    principal: Principal = require(Permission.TABLE_WRITE),
) -> dict[str, Any]:
    """Changes the cells given; the others keep their values (null clears a cell)."""
    async with rt.transaction() as db:
        return await tables.update_row(
            db, project_id, principal.mode, table_id, row_id, body.values
        )


@router.delete(
    "/{table_id}/rows/{row_id}",
    status_code=204,
    response_class=Response,
    responses=errors_doc(401, 403, 404),
)
async def delete_row(
    project_id: ProjectId,
    table_id: TableId,
    row_id: RowId,
    rt: RuntimeDep,
    principal: Principal = require(Permission.TABLE_WRITE),
) -> Response:
    async with rt.transaction() as db:
        await tables.delete_row(db, project_id, principal.mode, table_id, row_id)
    return Response(status_code=204)
