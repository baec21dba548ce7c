"""Exports of a project's conversations as JSON lines (DESIGN §6).

JSON lines because an export can be large: the server streams it in batches of conversations
(one short database session per batch, bounded memory) and a client can process it line by
line. Each line is one conversation with its messages.

The plain export (export:read) carries no end-user PII: the end user appears only as a keyed
pseudonym of their external id (stable across exports, not reversible without the server's
secret) and no names, emails, locales or attributes. The full export (full_export:read) adds
the end user's profile."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keyplane.adapters.sql.models import Conversation, EndUser, Message
from keyplane.adapters.sql.repositories import iso
from keyplane.domain.keyformat import Mode
from keyplane.services.conversations import describe_message

BATCH = 200


def _profile(user: EndUser) -> dict[str, Any]:
    return {
        "external_id": user.external_id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "locale": user.locale,
        "external_attributes": dict(user.external_attributes or {}),
    }


async def _batch(
    db: AsyncSession, project_id: int, mode: Mode, after_id: int
) -> list[tuple[Conversation, EndUser, list[Message]]]:
    rows = (
        await db.execute(
            select(Conversation, EndUser)
            .join(EndUser, EndUser.id == Conversation.end_user_id)
            .where(
                Conversation.project_id == project_id,
                Conversation.mode == mode,
                Conversation.id > after_id,
            )
            .order_by(Conversation.id)
            .limit(BATCH)
        )
    ).all()
    ids = [c.id for c, _ in rows]
    by_conversation: dict[int, list[Message]] = {i: [] for i in ids}
    if ids:
        found = await db.scalars(
            select(Message).where(Message.conversation_id.in_(ids)).order_by(Message.id)
        )
        for message in found.all():
            by_conversation[message.conversation_id].append(message)
    return [(c, u, by_conversation[c.id]) for c, u in rows]


async def lines(
    sessions: async_sessionmaker[AsyncSession],
    project_id: int,
    mode: Mode,
    *,
    pseudonym: Callable[[str], str],
    with_pii: bool,
) -> AsyncIterator[bytes]:
    after_id = 0
    while True:
        async with sessions() as db:
            batch = await _batch(db, project_id, mode, after_id)
        for conversation, user, messages in batch:
            line: dict[str, Any] = {
                "id": conversation.id,
                "user_id": pseudonym(f"{project_id}:{mode}:{user.external_id}"),
                "status": conversation.status,
                "labels": list(conversation.labels or []),
                "created_at": iso(conversation.created_at),
                "updated_at": iso(conversation.updated_at),
                "messages": [
                    {k: v for k, v in describe_message(m).items() if k != "conversation_id"}
                    for m in messages
                ],
            }
            if with_pii:
                line["user"] = _profile(user)
            yield json.dumps(line, ensure_ascii=False).encode() + b"\n"
        if len(batch) < BATCH:
            return
        after_id = batch[-1][0].id
