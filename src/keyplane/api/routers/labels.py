"""Conversation labels: list, and case-insensitive upsert by name."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import AfterValidator

from keyplane.api.deps import ProjectId, RuntimeDep, require
from keyplane.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor
from keyplane.api.schemas import errors_doc, storable
from keyplane.api.schemas_labels import LabelOut, LabelPage, LabelUpsert
from keyplane.domain.permissions import Permission
from keyplane.services import labels
from keyplane.services.auth import Principal

router = APIRouter(prefix="/v1/projects/{project_id}/labels", tags=["labels"])


def _named(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return storable(value)


LabelName = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f/]+$"),
    AfterValidator(_named),
]


@router.get("", response_model=LabelPage, responses=errors_doc(401, 403, 422))
async def list_labels(
    project_id: ProjectId,
    rt: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200), AfterValidator(storable)] = None,
    principal: Principal = require(Permission.LABEL_READ),
) -> dict[str, Any]:
    """Oldest first."""
    async with rt.sessions() as db:
        items, last = await labels.page(
            db, project_id, principal.mode, limit=limit, after_id=decode_cursor(cursor)
        )
    return {"data": items, "next_cursor": encode_cursor(last)}


@router.put(
    "/{name}",
    response_model=LabelOut,
    responses={201: {"model": LabelOut, "description": "Created"}, **errors_doc(401, 403, 422)},
)
async def upsert_label(
    project_id: ProjectId,
    name: LabelName,
    rt: RuntimeDep,
    response: Response,
    body: LabelUpsert | None = None,
    principal: Principal = require(Permission.LABEL_UPSERT),
) -> dict[str, Any]:
    """Create the label (201) or find it (200), matching names case-insensitively: "billing"
    finds "Billing", which keeps its first spelling. An optional `description` is set."""
    async with rt.transaction() as db:
        label, created = await labels.upsert(
            db, project_id, principal.mode, name, body.description if body else None
        )
    if created:
        response.status_code = 201
    return label
