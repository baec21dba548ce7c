"""Conversations and their messages, always inside one project and one mode."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import Conversation, EndUser, Message
from keyplane.adapters.sql.repositories import iso, utcnow
from keyplane.domain.errors import NotFound
from keyplane.domain.keyformat import Mode
from keyplane.services import labels as label_service
from keyplane.services import webhooks

STATUSES = ("resolved", "unresolved")


def describe_message(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "role": message.role,
        "content": message.content,
        "created_at": iso(message.created_at),
    }


def describe(conversation: Conversation, user: EndUser) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "project_id": conversation.project_id,
        "user_id": user.external_id,
        "status": conversation.status,
        "labels": list(conversation.labels or []),
        "created_at": iso(conversation.created_at),
        "updated_at": iso(conversation.updated_at),
    }


async def end_user(db: AsyncSession, project_id: int, mode: Mode, external_id: str) -> EndUser:
    """The end user with this external id, created on first sight."""
    query = select(EndUser).where(
        EndUser.project_id == project_id,
        EndUser.mode == mode,
        EndUser.external_id == external_id,
    )
    user = await db.scalar(query)
    if user is None:
        now = utcnow()
        user = EndUser(
            project_id=project_id,
            mode=mode,
            external_id=external_id,
            external_attributes={},
            created_at=now,
            updated_at=now,
        )
        try:
            # A savepoint: when a concurrent request created the same user first, use theirs.
            async with db.begin_nested():
                db.add(user)
        except IntegrityError:
            found = await db.scalar(query)
            assert found is not None
            user = found
    return user


async def create(
    db: AsyncSession, project_id: int, mode: Mode, user_id: str, message: str
) -> dict[str, Any]:
    user = await end_user(db, project_id, mode, user_id)
    now = utcnow()
    conversation = Conversation(
        project_id=project_id,
        mode=mode,
        end_user_id=user.id,
        status="unresolved",
        labels=[],
        created_at=now,
        updated_at=now,
    )
    db.add(conversation)
    await db.flush()
    first = Message(conversation_id=conversation.id, role="user", content=message, created_at=now)
    db.add(first)
    await db.flush()
    created = describe(conversation, user) | {"messages": [describe_message(first)]}
    await webhooks.enqueue(db, project_id, "conversation.created", {"conversation": created}, mode)
    return created


async def page(
    db: AsyncSession,
    project_id: int,
    mode: Mode,
    *,
    limit: int,
    after_id: int | None,
    status: str | None,
    user_id: str | None,
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first; returns the page and the id to continue after (None at the end)."""
    query = (
        select(Conversation, EndUser)
        .join(EndUser, EndUser.id == Conversation.end_user_id)
        .where(Conversation.project_id == project_id, Conversation.mode == mode)
        .order_by(Conversation.id.desc())
        .limit(limit + 1)
    )
    if after_id is not None:
        query = query.where(Conversation.id < after_id)
    if status is not None:
        query = query.where(Conversation.status == status)
    if user_id is not None:
        query = query.where(EndUser.external_id == user_id)
    rows = (await db.execute(query)).all()
    items = [describe(c, u) for c, u in rows[:limit]]
    more = len(rows) > limit
    return items, (rows[limit - 1][0].id if more else None)


async def _row(
    db: AsyncSession, project_id: int, mode: Mode, conversation_id: int
) -> tuple[Conversation, EndUser]:
    row = (
        await db.execute(
            select(Conversation, EndUser)
            .join(EndUser, EndUser.id == Conversation.end_user_id)
            .where(
                Conversation.id == conversation_id,
                Conversation.project_id == project_id,
                Conversation.mode == mode,
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"No conversation {conversation_id} in project {project_id} ({mode} data).")
    return row[0], row[1]


async def get(
    db: AsyncSession, project_id: int, mode: Mode, conversation_id: int
) -> dict[str, Any]:
    return describe(*await _row(db, project_id, mode, conversation_id))


async def update(
    db: AsyncSession,
    project_id: int,
    mode: Mode,
    conversation_id: int,
    *,
    status: str | None,
    labels: list[str] | None,
) -> dict[str, Any]:
    """Set the status and/or replace the labels; labels are the project's, created on first
    use and matched case-insensitively (the conversation carries each label's first spelling)."""
    conversation, user = await _row(db, project_id, mode, conversation_id)
    resolved = status == "resolved" and conversation.status != "resolved"
    before = list(conversation.labels or [])
    if status is not None:
        conversation.status = status
    if labels is not None:
        found, _created = await label_service.ensure(db, project_id, mode, labels)
        conversation.labels = [label.name for label in found]
    conversation.updated_at = utcnow()
    await db.flush()
    described = describe(conversation, user)
    if resolved:
        await webhooks.enqueue(
            db, project_id, "conversation.resolved", {"conversation": described}, mode
        )
    if labels is not None and list(conversation.labels) != before:
        await webhooks.enqueue(
            db,
            project_id,
            "conversation.labeled",
            {"conversation": described, "previous_labels": before},
            mode,
        )
    return described


async def add_message(
    db: AsyncSession, project_id: int, mode: Mode, conversation_id: int, role: str, content: str
) -> dict[str, Any]:
    conversation, _user = await _row(db, project_id, mode, conversation_id)
    now = utcnow()
    message = Message(conversation_id=conversation.id, role=role, content=content, created_at=now)
    db.add(message)
    conversation.updated_at = now
    await db.flush()
    described = describe_message(message)
    await webhooks.enqueue(
        db,
        project_id,
        "message.created",
        {"conversation_id": conversation.id, "message": described},
        mode,
    )
    return described


async def messages(
    db: AsyncSession, project_id: int, mode: Mode, conversation_id: int
) -> list[dict[str, Any]]:
    await get(db, project_id, mode, conversation_id)
    rows = await db.scalars(
        select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
    )
    return [describe_message(m) for m in rows.all()]
