"""Topics: what a project's conversations are about, derived from the conversations
themselves. Two kinds, both with counts a person can act on:
- `label`: each label applied to conversations;
- `term`: a word that recurs in the opening messages of at least two conversations
  ("password", "invoice"), word forms merged ("passwords" counts as "password").
Computed over the most recent conversations (SCAN of them) on each request."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import Conversation, Message
from keyplane.domain.keyformat import Mode
from keyplane.domain.text import search_terms, stem

SCAN = 2_000
SAMPLES = 5
MIN_TERM_CONVERSATIONS = 2


@dataclass
class _Topic:
    name: str
    kind: str
    ids: list[int] = field(default_factory=list)
    resolved: int = 0

    def add(self, conversation_id: int, status: str) -> None:
        self.ids.append(conversation_id)
        self.resolved += status == "resolved"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "conversations": len(self.ids),
            "resolved": self.resolved,
            "unresolved": len(self.ids) - self.resolved,
            "conversation_ids": self.ids[:SAMPLES],
        }


async def topics(db: AsyncSession, project_id: int, mode: Mode, limit: int) -> list[dict[str, Any]]:
    scope = (Conversation.project_id == project_id, Conversation.mode == mode)
    firsts = (
        select(Message.conversation_id, func.min(Message.id).label("first_id"))
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(*scope, Message.role == "user")
        .group_by(Message.conversation_id)
        .subquery()
    )
    rows = (
        await db.execute(
            select(Conversation.id, Conversation.status, Conversation.labels, Message.content)
            .outerjoin(firsts, firsts.c.conversation_id == Conversation.id)
            .outerjoin(Message, Message.id == firsts.c.first_id)
            .where(*scope)
            .order_by(Conversation.id.desc())
            .limit(SCAN)
        )
    ).all()
    labels: dict[str, _Topic] = {}
    terms: dict[str, _Topic] = {}
    spellings: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for conversation_id, status, applied, opening in rows:
        for name in dict.fromkeys(applied or []):
            labels.setdefault(name.casefold(), _Topic(name, "label")).add(conversation_id, status)
        stems: dict[str, None] = {}
        for term in search_terms(opening or ""):
            if not term.isdigit():
                stems.setdefault(stem(term), None)
                spellings[stem(term)][term] += 1
        for key in stems:
            terms.setdefault(key, _Topic(key, "term")).add(conversation_id, status)
    found = list(labels.values())
    for key, topic in terms.items():
        if len(topic.ids) >= MIN_TERM_CONVERSATIONS:
            topic.name = spellings[key].most_common(1)[0][0]
            found.append(topic)
    found.sort(key=lambda t: (-len(t.ids), t.kind != "label", t.name))
    return [t.describe() for t in found[:limit]]
