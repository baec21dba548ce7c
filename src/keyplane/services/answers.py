"""`generate`: answer a conversation's latest question from the project's knowledge.

Retrieval is the database's full-text search over the snippets of the same project and mode
(adapters/sql/search.py). The answer is composed from the best snippets' most relevant
sentences, citing them; with an OpenAI-compatible provider configured, the provider writes it
from the same snippets instead. When the provider fails, the extractive answer is used and the
failure logged: the caller still gets an answer with its sources, never a 5xx for a provider
outage. When nothing matches, a polite answer says so and `sources` is empty (the provider is
not asked: without snippets it could only guess)."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keyplane.adapters.sql import search
from keyplane.adapters.sql.models import Message
from keyplane.domain.keyformat import Mode
from keyplane.domain.text import NO_ANSWER, Passage, extractive_answer, search_terms
from keyplane.services import conversations, llm
from keyplane.settings import Settings

log = structlog.get_logger(__name__)

RETRIEVE = 3


async def generate(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    project_id: int,
    mode: Mode,
    conversation_id: int,
) -> dict[str, Any]:
    # Read first, compose without holding a connection (a provider may take seconds), write.
    async with sessions() as db:
        await conversations.get(db, project_id, mode, conversation_id)
        history = [
            (m.role, m.content)
            for m in await db.scalars(
                select(Message)
                .where(Message.conversation_id == conversation_id)
                .order_by(Message.id)
            )
        ]
        questions = [content for role, content in history if role == "user"]
        question = questions[-1] if questions else (history[-1][1] if history else "")
        hits = await search.search(db, project_id, mode, search_terms(question), RETRIEVE)
    passages = [
        Passage(number=n, title=hit.title, content=hit.content)
        for n, hit in enumerate(hits, start=1)
    ]
    if not hits:
        content, used = NO_ANSWER, []
    else:
        content, cited = extractive_answer(question, passages)
        used = [hits[n - 1] for n in cited]
        if settings.llm_base_url:
            try:
                content = await llm.answer(settings, history, passages)
                used = hits
            except llm.ProviderFailed as failure:
                log.warning("llm_provider_failed", reason=str(failure), fallback="extractive")
    async with sessions() as db:
        message = await conversations.add_message(
            db, project_id, mode, conversation_id, "assistant", content
        )
        await db.commit()
    return {
        "message": {
            "id": message["id"],
            "conversation_id": conversation_id,
            "role": "assistant",
            "content": content,
            "created_at": message["created_at"],
        },
        "sources": [
            {"snippet_id": h.snippet_id, "title": h.title, "url": h.url, "score": h.score}
            for h in used
        ],
    }
