from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import AfterValidator

from keyplane.api.deps import MAX_ID, ProjectId, RuntimeDep, require
from keyplane.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor
from keyplane.api.schemas import (
    ConversationCreate,
    ConversationCreated,
    ConversationOut,
    ConversationPage,
    ConversationUpdate,
    GenerateOut,
    MessageCreate,
    MessageList,
    MessageOut,
    errors_doc,
    storable,
)
from keyplane.domain.permissions import Permission
from keyplane.services import answers, conversations
from keyplane.services.auth import Principal

router = APIRouter(prefix="/v1/projects/{project_id}/conversations", tags=["conversations"])

ConversationId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("", response_model=ConversationPage, responses=errors_doc(401, 403, 422))
async def list_conversations(
    project_id: ProjectId,
    rt: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200), AfterValidator(storable)] = None,
    status: Literal["resolved", "unresolved"] | None = None,
    user_id: Annotated[str | None, Query(max_length=200), AfterValidator(storable)] = None,
    principal: Principal = require(Permission.CONVERSATION_READ),
) -> dict[str, Any]:
    async with rt.sessions() as db:
        items, last = await conversations.page(
            db,
            project_id,
            principal.mode,
            limit=limit,
            after_id=decode_cursor(cursor),
            status=status,
            user_id=user_id,
        )
    return {"data": items, "next_cursor": encode_cursor(last)}


@router.post(
    "", status_code=201, response_model=ConversationCreated, responses=errors_doc(401, 403, 422)
)
async def create_conversation(
    project_id: ProjectId,
    body: ConversationCreate,
    rt: RuntimeDep,
    principal: Principal = require(Permission.CONVERSATION_GENERATE),
) -> dict[str, Any]:
    """Start a conversation for an end user (created on first use) with their first message."""
    async with rt.transaction() as db:
        return await conversations.create(
            db, project_id, principal.mode, body.user_id, body.message
        )


@router.get(
    "/{conversation_id}", response_model=ConversationOut, responses=errors_doc(401, 403, 404)
)
async def get_conversation(
    project_id: ProjectId,
    conversation_id: ConversationId,
    rt: RuntimeDep,
    principal: Principal = require(Permission.CONVERSATION_READ),
) -> dict[str, Any]:
    async with rt.sessions() as db:
        return await conversations.get(db, project_id, principal.mode, conversation_id)


@router.get(
    "/{conversation_id}/messages", response_model=MessageList, responses=errors_doc(401, 403, 404)
)
async def list_messages(
    project_id: ProjectId,
    conversation_id: ConversationId,
    rt: RuntimeDep,
    principal: Principal = require(Permission.CONVERSATION_READ),
) -> dict[str, Any]:
    async with rt.sessions() as db:
        return {
            "data": await conversations.messages(db, project_id, principal.mode, conversation_id)
        }


@router.patch(
    "/{conversation_id}", response_model=ConversationOut, responses=errors_doc(401, 403, 404, 422)
)
async def update_conversation(
    project_id: ProjectId,
    conversation_id: ConversationId,
    body: ConversationUpdate,
    rt: RuntimeDep,
    principal: Principal = require(Permission.CONVERSATION_WRITE),
) -> dict[str, Any]:
    """Resolve or reopen, and/or replace the labels (created in the project on first use)."""
    async with rt.transaction() as db:
        return await conversations.update(
            db,
            project_id,
            principal.mode,
            conversation_id,
            status=body.status,
            labels=body.labels,
        )


@router.post(
    "/{conversation_id}/messages",
    status_code=201,
    response_model=MessageOut,
    responses=errors_doc(401, 403, 404, 422),
)
async def add_message(
    project_id: ProjectId,
    conversation_id: ConversationId,
    body: MessageCreate,
    rt: RuntimeDep,
    principal: Principal = require(Permission.CONVERSATION_WRITE),
) -> dict[str, Any]:
    async with rt.transaction() as db:
        return await conversations.add_message(
            db, project_id, principal.mode, conversation_id, body.role, body.content
        )


@router.post(
    "/{conversation_id}/generate",
    response_model=GenerateOut,
    responses=errors_doc(401, 403, 404, 422),
)
async def generate(
    project_id: ProjectId,
    conversation_id: ConversationId,
    rt: RuntimeDep,
    principal: Principal = require(Permission.CONVERSATION_GENERATE),
) -> dict[str, Any]:
    """Answer the conversation's latest user message from the project's knowledge snippets
    (full-text search), store the answer as an assistant message, and return it with the
    snippets it used."""
    return await answers.generate(
        rt.sessions, rt.settings, project_id, principal.mode, conversation_id
    )
