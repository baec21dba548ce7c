"""Topics derived from the project's conversations (see services/topics.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from keyplane.api.deps import ProjectId, RuntimeDep, require
from keyplane.api.schemas import errors_doc
from keyplane.api.schemas_labels import TopicList
from keyplane.domain.permissions import Permission
from keyplane.services import topics
from keyplane.services.auth import Principal

router = APIRouter(prefix="/v1/projects/{project_id}/topics", tags=["topics"])


@router.get("", response_model=TopicList, responses=errors_doc(401, 403, 422))
async def list_topics(
    project_id: ProjectId,
    rt: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    principal: Principal = require(Permission.TOPIC_READ),
) -> dict[str, Any]:
    """What conversations are about, most frequent first: their labels, and words that recur
    in their opening messages, each with how many conversations (resolved or not)."""
    async with rt.sessions() as db:
        found = await topics.topics(db, project_id, principal.mode, limit)
    return {"data": found, "next_cursor": None}
