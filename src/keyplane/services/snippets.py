"""Knowledge snippets: what `generate` answers from. Written by hand through the API or by a
data provider's sync; the full-text index follows every write (see adapters/sql/search.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import Snippet
from keyplane.adapters.sql.paging import keyset_page
from keyplane.adapters.sql.repositories import iso, utcnow
from keyplane.domain.errors import NotFound
from keyplane.domain.keyformat import Mode
from keyplane.services import webhooks

EDITABLE = ("title", "content", "url")


def describe(snippet: Snippet) -> dict[str, Any]:
    return {
        "id": snippet.id,
        "title": snippet.title,
        "content": snippet.content,
        "url": snippet.url,
        "data_provider_id": snippet.provider_id,
        "source": snippet.source,
        "created_at": iso(snippet.created_at),
        "updated_at": iso(snippet.updated_at),
    }


async def _find(db: AsyncSession, project_id: int, mode: Mode, snippet_id: int) -> Snippet:
    snippet = await db.scalar(
        select(Snippet).where(
            Snippet.id == snippet_id, Snippet.project_id == project_id, Snippet.mode == mode
        )
    )
    if snippet is None:
        raise NotFound(f"No snippet {snippet_id} in project {project_id} ({mode} data).")
    return snippet


async def get(db: AsyncSession, project_id: int, mode: Mode, snippet_id: int) -> dict[str, Any]:
    return describe(await _find(db, project_id, mode, snippet_id))


async def create(
    db: AsyncSession, project_id: int, mode: Mode, *, title: str, content: str, url: str | None
) -> dict[str, Any]:
    now = utcnow()
    snippet = Snippet(
        project_id=project_id,
        mode=mode,
        title=title,
        content=content,
        url=url,
        created_at=now,
        updated_at=now,
    )
    db.add(snippet)
    await db.flush()
    return await _changed(db, snippet, "created")


async def update(
    db: AsyncSession, project_id: int, mode: Mode, snippet_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    """Changes the given fields. A snippet a data provider made is overwritten by its next
    sync when the source changes."""
    snippet = await _find(db, project_id, mode, snippet_id)
    for field in EDITABLE:
        if field in changes:
            setattr(snippet, field, changes[field])
    snippet.updated_at = utcnow()
    await db.flush()
    return await _changed(db, snippet, "updated")


async def delete(db: AsyncSession, project_id: int, mode: Mode, snippet_id: int) -> None:
    snippet = await _find(db, project_id, mode, snippet_id)
    await _changed(db, snippet, "deleted")
    await db.delete(snippet)
    await db.flush()


async def _changed(db: AsyncSession, snippet: Snippet, action: str) -> dict[str, Any]:
    """The `snippet.changed` event of a change made through the API (a data provider's sync
    announces itself once, with data_provider.sync.completed)."""
    described = describe(snippet)
    await webhooks.enqueue(
        db,
        snippet.project_id,
        "snippet.changed",
        {"action": action, "snippet": described},
        snippet.mode,
    )
    return described


async def page(
    db: AsyncSession,
    project_id: int,
    mode: Mode,
    *,
    limit: int,
    after_id: int | None,
    provider_id: int | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first."""
    query = select(Snippet).where(Snippet.project_id == project_id, Snippet.mode == mode)
    if provider_id is not None:
        query = query.where(Snippet.provider_id == provider_id)
    rows, last = await keyset_page(
        db, query, Snippet.id, limit=limit, after_id=after_id, newest_first=True
    )
    return [describe(r) for r in rows], last
