from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from keyplane.api.deps import ProjectId, RuntimeDep, require
from keyplane.api.schemas import errors_doc
from keyplane.domain.permissions import Permission
from keyplane.services import exports
from keyplane.services.auth import Principal

router = APIRouter(prefix="/v1/projects/{project_id}/exports", tags=["exports"])

NDJSON = "application/x-ndjson"
_STREAM_DOC = {
    200: {
        "description": "JSON lines: one conversation with its messages per line",
        "content": {NDJSON: {"schema": {"type": "string"}}},
    },
    **errors_doc(401, 403),
}


def _stream(
    rt: RuntimeDep, project_id: int, principal: Principal, *, pii: bool
) -> StreamingResponse:
    body = exports.lines(
        rt.sessions,
        project_id,
        principal.mode,
        pseudonym=rt.keyring.pseudonym,
        with_pii=pii,
    )
    name = "full" if pii else "conversations"
    return StreamingResponse(
        body,
        media_type=NDJSON,
        headers={"Content-Disposition": f'attachment; filename="{name}-{project_id}.jsonl"'},
    )


@router.get("/conversations", response_class=StreamingResponse, responses=_STREAM_DOC)
async def export_conversations(
    project_id: ProjectId,
    rt: RuntimeDep,
    principal: Principal = require(Permission.EXPORT_READ),
) -> StreamingResponse:
    """Every conversation with its messages, without end-user PII: the end user is a keyed
    pseudonym (`user_id`, stable across exports), never a name, email or attribute."""
    return _stream(rt, project_id, principal, pii=False)


@router.get("/full", response_class=StreamingResponse, responses=_STREAM_DOC)
async def export_full(
    project_id: ProjectId,
    rt: RuntimeDep,
    principal: Principal = require(Permission.FULL_EXPORT_READ),
) -> StreamingResponse:
    """Like the conversations export, plus each end user's profile under `user`
    (external_id, first_name, last_name, email, locale, external_attributes)."""
    return _stream(rt, project_id, principal, pii=True)
