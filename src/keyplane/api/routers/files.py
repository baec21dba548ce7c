from __future__ import annotations

from pathlib import Path as FsPath
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Path, Query, Response, UploadFile
from pydantic import AfterValidator

from keyplane.adapters.disk.blobs import DiskBlobStore
from keyplane.api.deps import MAX_ID, ProjectId, RuntimeDep, require
from keyplane.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor
from keyplane.api.platform_schemas import FileOut, FilePage
from keyplane.api.schemas import errors_doc, storable
from keyplane.domain.filetypes import ALLOWED
from keyplane.domain.permissions import Permission
from keyplane.runtime import Runtime
from keyplane.services import files
from keyplane.services.auth import Principal

router = APIRouter(prefix="/v1/projects/{project_id}/files", tags=["files"])

FileId = Annotated[int, Path(ge=1, le=MAX_ID)]


def blob_store(rt: Runtime) -> files.BlobStore:
    """Where file bytes live: `<data_dir>/files/`, content-addressed."""
    return DiskBlobStore(FsPath(rt.settings.data_dir) / "files")


@router.get("", response_model=FilePage, responses=errors_doc(401, 403))
async def list_files(
    project_id: ProjectId,
    rt: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200), AfterValidator(storable)] = None,
    principal: Principal = require(Permission.FILE_READ),
) -> dict[str, Any]:
    async with rt.sessions() as db:
        items, last = await files.page(
            db, project_id, principal.mode, limit=limit, after_id=decode_cursor(cursor)
        )
    return {"data": items, "next_cursor": encode_cursor(last)}


@router.post("", status_code=201, response_model=FileOut, responses=errors_doc(401, 403, 415))
async def upload_file(
    project_id: ProjectId,
    rt: RuntimeDep,
    file: Annotated[UploadFile, File(description="The file (multipart/form-data)")],
    principal: Principal = require(Permission.FILE_WRITE),
) -> dict[str, Any]:
    """Uploads one file of at most KEYPLANE_MAX_FILE_BYTES (413 beyond). Its type must be in
    the allow-list and match its bytes (415 otherwise): a declared image/png must be a PNG."""
    limit = rt.settings.max_file_bytes
    data = await file.read(limit + 1)
    async with rt.transaction() as db:
        return await files.upload(
            db,
            blob_store(rt),
            project_id,
            principal.mode,
            filename=file.filename,
            content_type=file.content_type,
            data=data,
            max_bytes=limit,
        )


@router.get("/{file_id}", response_model=FileOut, responses=errors_doc(401, 403, 404))
async def get_file(
    project_id: ProjectId,
    file_id: FileId,
    rt: RuntimeDep,
    principal: Principal = require(Permission.FILE_READ),
) -> dict[str, Any]:
    async with rt.sessions() as db:
        return files.describe(await files.get(db, project_id, principal.mode, file_id))


@router.get(
    "/{file_id}/content",
    response_class=Response,
    responses={
        200: {
            "description": "The file's bytes, with its content type",
            "content": {kind: {} for kind in sorted(ALLOWED)},
        },
        **errors_doc(401, 403, 404),
    },
)
async def download_file(
    project_id: ProjectId,
    file_id: FileId,
    rt: RuntimeDep,
    principal: Principal = require(Permission.FILE_READ),
) -> Response:
    async with rt.sessions() as db:
        stored, data = await files.content(db, blob_store(rt), project_id, principal.mode, file_id)
    return Response(
        data,
        media_type=stored.content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(stored.filename)}",
            "X-Content-Type-Options": "nosniff",
            "ETag": f'"{stored.sha256}"',
        },
    )


@router.delete(
    "/{file_id}", status_code=204, response_class=Response, responses=errors_doc(401, 403, 404)
)
async def delete_file(
    project_id: ProjectId,
    file_id: FileId,
    rt: RuntimeDep,
    principal: Principal = require(Permission.FILE_WRITE),
) -> Response:
    async with rt.transaction() as db:
        await files.remove(db, blob_store(rt), project_id, principal.mode, file_id)
    return Response(status_code=204)
