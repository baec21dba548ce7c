"""Full-text search over snippets, one query per database: SQLite FTS5 (bm25) and PostgreSQL
tsvector (ts_rank). The index objects are made by migration 0007; `INDEX_OBJECTS` names them
so that the models-versus-migrations check knows they are there on purpose."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Database objects that exist only in the migration (they differ per database).
INDEX_OBJECTS = frozenset(
    {
        "snippets_fts",
        "snippets_fts_data",
        "snippets_fts_idx",
        "snippets_fts_content",
        "snippets_fts_docsize",
        "snippets_fts_config",
        "ix_snippets_search",
    }
)


@dataclass(frozen=True)
class Hit:
    snippet_id: int
    title: str
    url: str | None
    content: str
    score: float


# Title matches count double: a snippet titled "Resetting your password" is about that.
_SQLITE = text(
    "SELECT s.id, s.title, s.url, s.content, -bm25(snippets_fts, 2.0, 1.0) AS score "
    "FROM snippets_fts JOIN snippets s ON s.id = snippets_fts.rowid "
    "WHERE snippets_fts MATCH :query AND s.project_id = :project_id AND s.mode = :mode "
    "ORDER BY bm25(snippets_fts, 2.0, 1.0), s.id LIMIT :limit"
)
# Exactly the indexed expression of migration 0007, so that PostgreSQL can use
# ix_snippets_search to find the matches (ranking then weighs title words higher).
PG_DOCUMENT = "to_tsvector('english', s.title || ' ' || s.content)"
_POSTGRES = text(
    "SELECT s.id, s.title, s.url, s.content, "
    "ts_rank(setweight(to_tsvector('english', s.title), 'A') || to_tsvector('english', s.content), "
    "q) AS score "
    "FROM snippets s, to_tsquery('english', :query) q "
    "WHERE " + PG_DOCUMENT + " @@ q "  # a constant, not input
    "AND s.project_id = :project_id AND s.mode = :mode "
    "ORDER BY score DESC, s.id LIMIT :limit"
)


async def search(
    db: AsyncSession, project_id: int, mode: str, terms: list[str], limit: int
) -> list[Hit]:
    """Snippets of the project and mode matching any of `terms` (plain words: letters and
    digits only, so they cannot carry query syntax), best first."""
    if not terms:
        return []
    dialect = db.get_bind().dialect.name
    if dialect == "sqlite":
        query = " OR ".join(f'"{term}"' for term in terms)
        statement = _SQLITE
    else:
        query = " | ".join(terms)
        statement = _POSTGRES
    rows = await db.execute(
        statement, {"query": query, "project_id": project_id, "mode": mode, "limit": limit}
    )
    return [
        Hit(snippet_id=r[0], title=r[1], url=r[2], content=r[3], score=round(float(r[4]), 6))
        for r in rows.all()
    ]
